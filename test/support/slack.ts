import { SlackWebApi } from '../../lib/slack/web-api';
import { answerSlackApi, SLACK_API_PATH } from '../../local/slack/web-api';
import { LOCAL_SLACK, type SlackWorkspace } from '../../local/slack/workspace';

/** A Web API client answered by the local Slack simulator in-process; `wrap` may schedule each call. */
export function simulatedSlack(workspace: SlackWorkspace, wrap: <T>(call: () => Promise<T>) => Promise<T> = (call) => call()): SlackWebApi {
  const fetchSlack = async (url: string | URL | Request, init?: RequestInit): Promise<Response> =>
    wrap(async () => {
      const method = String(url).split('/').pop() ?? '';
      const headers = Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>).map(([name, value]) => [name.toLowerCase(), value]));
      const answer = answerSlackApi(workspace, { method: 'POST', path: `${SLACK_API_PATH}${method}`, query: '', headers, body: String(init?.body ?? '') });
      return new Response(answer.body, { status: answer.status, headers: answer.headers });
    });
  return new SlackWebApi({ apiUrl: 'https://slack.test/api/', token: async () => LOCAL_SLACK.botToken, fetch: fetchSlack as typeof fetch, sleep: async () => undefined });
}
