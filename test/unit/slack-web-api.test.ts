import { describe, expect, it } from 'vitest';
import { SlackApiError, SlackWebApi } from '../../lib/slack/web-api';

// The Web API client: what it sends, and how it waits out Slack's rate limits.

type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | Error;

/** A Slack that answers in turn, recording each request and the client's waits. */
function scriptedSlack(answers: Answer[]) {
  const requests: { url: string; headers: Record<string, string>; body: string }[] = [];
  const waits: number[] = [];
  let clock = 0;
  const api = new SlackWebApi({
    apiUrl: 'https://slack.test/api/',
    token: async () => 'xoxb-test',
    fetch: (async (url: string | URL, init?: RequestInit) => {
      requests.push({ url: String(url), headers: init?.headers as Record<string, string>, body: String(init?.body) });
      const answer = answers.shift() ?? { status: 500 };
      if (answer instanceof Error) throw answer;
      return new Response(answer.body === undefined ? '' : JSON.stringify(answer.body), { status: answer.status, headers: answer.headers });
    }) as typeof fetch,
    sleep: async (ms) => {
      waits.push(ms);
      clock += ms;
    },
    now: () => clock,
  });
  return { api, requests, waits };
}

describe("the Slack Web API client", () => {
  it('posts JSON with the bot token to the method under the API URL, and returns the answer', async () => {
    const { api, requests } = scriptedSlack([{ status: 200, body: { ok: true, channel: 'C1', ts: '1.000100' } }]);

    const answer = await api.call('chat.postMessage', { channel: 'C1', text: 'hi' }, { budgetMs: 5_000 });

    expect(answer).toEqual({ ok: true, channel: 'C1', ts: '1.000100' });
    expect(requests).toEqual([
      {
        url: 'https://slack.test/api/chat.postMessage',
        headers: { authorization: 'Bearer xoxb-test', 'content-type': 'application/json; charset=utf-8' },
        body: '{"channel":"C1","text":"hi"}',
      },
    ]);
  });

  it('sends form fields to a method that does not read JSON', async () => {
    const { api, requests } = scriptedSlack([{ status: 200, body: { ok: true, users: ['U1'] } }]);

    await api.call('usergroups.users.list', { usergroup: 'S1' }, { budgetMs: 5_000 });

    expect(requests[0]).toMatchObject({ headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'usergroup=S1' });
  });

  it('waits the Retry-After that a 429 asks for, then tries again', async () => {
    const { api, waits, requests } = scriptedSlack([
      { status: 429, headers: { 'retry-after': '3' } },
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 200, body: { ok: true } },
    ]);

    await api.call('chat.update', { channel: 'C1', ts: '1.0' }, { budgetMs: 10_000 });

    expect(waits).toEqual([3_000, 1_000]);
    expect(requests).toHaveLength(3);
  });

  it('gives up as ratelimited, without waiting, when the Retry-After is past its time', async () => {
    const { api, waits } = scriptedSlack([{ status: 429, headers: { 'retry-after': '30' } }]);

    const call = api.call('chat.update', { channel: 'C1', ts: '1.0' }, { budgetMs: 20_000 });

    await expect(call).rejects.toMatchObject({ name: 'SlackApiError', code: 'ratelimited', transient: true });
    expect(waits).toEqual([]);
  });

  it('backs off after a 5xx or a network failure, and refuses at once what Slack refuses', async () => {
    const { api, waits } = scriptedSlack([{ status: 503 }, new TypeError('fetch failed'), { status: 200, body: { ok: false, error: 'channel_not_found' } }]);

    const call = api.call('chat.postMessage', { channel: 'C9', text: 'x' }, { budgetMs: 10_000 });

    await expect(call).rejects.toEqual(new SlackApiError('chat.postMessage', 'channel_not_found'));
    expect(waits).toEqual([250, 500]);
  });
});
