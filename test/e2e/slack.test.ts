import { AcceptVpcEndpointConnectionsCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { slackSignature } from '../../lib/slack/signature';
import type { ClickResult } from '../../local/slack/clicks';
import type { ChannelMessage } from '../../local/slack/workspace';
import { LOCAL_APPROVER, LOCAL_APPROVER_ARN, signedClient } from './approvals-client';
import { startLocalStack, type LocalStack } from './local-stack';

// Approvals in Slack, end to end: the local stack posts held requests to its Slack
// simulator's channel through the decisions topic, and the simulator's clicks reach
// the interactions route signed as Slack signs them.

const STRANGER = '999988887777';
const ALLOWED = '111122223333';
const SLACK_TEAM = 'T0LOCALTEAM';
const APPROVER = 'U0LOCALAPPROVER';
const VIEWER = 'U0LOCALVIEWER';
/** In the user group S0LOCALLEADS, which slackApprovers names. */
const LEAD = 'U0LOCALLEAD';
const SIGNING_SECRET = 'local-slack-signing-secret';

let stack: LocalStack;
let approver: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({ policy: { default: { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' } } });
  approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function messages(): Promise<ChannelMessage[]> {
  const response = await stack.request('GET', '/local/slack/messages');
  expect(response.status).toBe(200);
  return (response.body as { messages: ChannelMessage[] }).messages;
}

async function messageAbout(endpointId: string): Promise<ChannelMessage | undefined> {
  return (await messages()).find((message) => JSON.stringify(message.blocks).includes(endpointId) || message.updates.some((u) => JSON.stringify(u.blocks).includes(endpointId)));
}

async function click(body: { ts: string; actionId: 'accept' | 'reject'; userId: string; reason?: string }): Promise<ClickResult> {
  const response = await stack.request('POST', '/local/slack/click', body);
  expect(response.status, JSON.stringify(response.body)).toBe(200);
  return response.body as ClickResult;
}

/** The text of every block of a message, joined: what a reader sees. */
function shown(message: Pick<ChannelMessage, 'blocks'>): string {
  return JSON.stringify(message.blocks);
}

function buttons(message: Pick<ChannelMessage, 'blocks'>): string[] {
  return (message.blocks as { type: string; elements?: { action_id: string }[] }[])
    .filter((block) => block.type === 'actions')
    .flatMap((block) => (block.elements ?? []).map((element) => element.action_id));
}

/** A held request, announced in the channel; its message. */
async function heldRequest(serviceId?: string): Promise<{ serviceId: string; endpointId: string; message: ChannelMessage }> {
  const service = serviceId ?? (await stack.createService()).serviceId;
  const { vpcEndpointId } = await stack.createEndpoint(service, { ownerAccountId: STRANGER, region: 'eu-west-1' });
  const message = await stack.waitFor(() => messageAbout(vpcEndpointId), { description: `the Slack message about ${vpcEndpointId}` });
  return { serviceId: service, endpointId: vpcEndpointId, message };
}

async function ec2State(serviceId: string, endpointId: string): Promise<string | undefined> {
  return (await stack.listEndpoints(serviceId)).find((endpoint) => endpoint.vpcEndpointId === endpointId)?.state;
}

/** The message once its update shows `status` (Accepted, Rejected, Revoked). */
async function messageShowing(endpointId: string, status: string): Promise<ChannelMessage> {
  return stack.waitFor(
    async () => {
      const message = await messageAbout(endpointId);
      return message && shown(message).includes(`${status}: endpoint connection`) ? message : undefined;
    },
    { description: `the message about ${endpointId} showing ${status}` },
  );
}

describe('posting', () => {
  it('posts a held request with its account, service, consumer Region, rule and why, and Accept and Reject buttons', async () => {
    const { serviceId, endpointId, message } = await heldRequest();

    expect(message.channel).toBe('C0LOCALAPPROVALS');
    expect(message.text).toContain(`Approval needed: account ${STRANGER}`);
    expect(shown(message)).toContain(`*Consumer account*\\n\`${STRANGER}\``);
    expect(shown(message)).toContain(`\`${serviceId}\``);
    expect(shown(message)).toContain(`\`${endpointId}\``);
    expect(shown(message)).toContain('*Consumer Region*\\neu-west-1');
    expect(shown(message)).toContain('rule onUnmatched:hold');
    const record = await stack.record(serviceId, endpointId);
    expect(shown(message)).toContain(record?.decision?.reason ?? 'no reason recorded');
    expect(buttons(message)).toEqual(['accept', 'reject']);
    expect(message.updates).toEqual([]);
  });

  it('posts nothing about a request the policy decided at once', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    await stack.waitFor(async () => (await ec2State(serviceId, vpcEndpointId)) === 'available' && (await stack.idle()));
    const held = await heldRequest(serviceId); // announced after the allowed one: its delivery has been handled

    expect((await messages()).map((message) => message.ts)).toEqual([held.message.ts]);
  });

  it('posts every request of a burst, waiting out Slack\'s rate limit of the channel', async () => {
    const { serviceId } = await stack.createService();
    await stack.createEndpoints(serviceId, { ownerAccountId: STRANGER, count: 8 });

    const posted = await stack.waitFor(async () => ((await messages()).length === 8 ? messages() : undefined), {
      timeoutMs: 30_000,
      description: '8 messages',
    });

    expect(new Set(posted.map((message) => message.ts)).size).toBe(8);
    // chat.postMessage allows a burst of 5, then 1 a second: the last came after Retry-After.
    const times = posted.map((message) => Date.parse(message.postedAt)).sort((a, b) => a - b);
    expect((times.at(-1) ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(1500);
  });
});

describe('deciding in Slack', () => {
  it('accepts as the approver who clicked, with the reason from the modal, and updates the message', async () => {
    const { serviceId, endpointId, message } = await heldRequest();

    const result = await click({ ts: message.ts, actionId: 'accept', userId: APPROVER, reason: 'ticket SEC-42' });

    expect(result.statuses).toEqual([200, 200]);
    expect(result.modal).toMatchObject({ title: 'Accept connection', outcome: 'submitted' });
    const record = await stack.record(serviceId, endpointId);
    expect(record?.decision).toMatchObject({ outcome: 'accept', acted: true, rule: 'approver', reason: 'ticket SEC-42', decidedBy: `slack:${SLACK_TEAM}/${APPROVER}` });
    expect(await ec2State(serviceId, endpointId)).toMatch(/^(pending|available)$/);
    const updated = await messageShowing(endpointId, 'Accepted');
    expect(shown(updated)).toContain(`<@${APPROVER}> (slack:${SLACK_TEAM}/${APPROVER})`);
    expect(shown(updated)).toContain('ticket SEC-42');
    expect(buttons(updated)).toEqual([]);
  });

  it('rejects as a member of an approvers user group', async () => {
    const { serviceId, endpointId, message } = await heldRequest();

    const result = await click({ ts: message.ts, actionId: 'reject', userId: LEAD, reason: 'unknown consumer' });

    expect(result.statuses).toEqual([200, 200]);
    expect((await stack.record(serviceId, endpointId))?.decision).toMatchObject({ outcome: 'reject', decidedBy: `slack:${SLACK_TEAM}/${LEAD}`, reason: 'unknown consumer' });
    expect(await ec2State(serviceId, endpointId)).toBe('rejected');
    expect(shown(await messageShowing(endpointId, 'Rejected'))).toContain('unknown consumer');
  });

  it('tells a user who is not an approver so, privately, and changes nothing', async () => {
    const { serviceId, endpointId, message } = await heldRequest();
    const before = await stack.record(serviceId, endpointId);

    const result = await click({ ts: message.ts, actionId: 'accept', userId: VIEWER, reason: 'let me in' });

    expect(result.statuses).toEqual([200]);
    expect(result.modal).toBeUndefined();
    expect(result.ephemeral).toEqual([{ channel: message.channel, user: VIEWER, text: expect.stringContaining('You are not an approver') }]);
    expect(await stack.record(serviceId, endpointId)).toEqual(before);
    expect(await ec2State(serviceId, endpointId)).toBe('pendingAcceptance');
    expect((await messageAbout(endpointId))?.updates).toEqual([]);
  });

  it('asks again when the reason is missing or unsafe, and decides nothing', async () => {
    const { serviceId, endpointId, message } = await heldRequest();

    const empty = await click({ ts: message.ts, actionId: 'accept', userId: APPROVER });
    const unsafe = await click({ ts: message.ts, actionId: 'accept', userId: APPROVER, reason: 'ok\u202Edeyalp' });

    expect(empty.modal).toMatchObject({ outcome: 'not-submitted' });
    expect(unsafe.statuses).toEqual([200, 200]);
    expect(unsafe.modal).toMatchObject({ outcome: 'errors', errors: { reason: expect.stringContaining('bidirectional-text controls') } });
    expect((await stack.record(serviceId, endpointId))?.decision?.outcome).toBe('hold');
  });
});

describe('decisions made elsewhere', () => {
  it('updates the message when the API decides, and a later click changes nothing and says who decided', async () => {
    const { serviceId, endpointId, message } = await heldRequest();
    const decided = await approver.request('POST', `/services/${serviceId}/connections/${endpointId}/accept`, { body: { reason: 'ticket OPS-7' } });
    expect(decided.status).toBe(200);

    const result = await click({ ts: message.ts, actionId: 'reject', userId: APPROVER, reason: 'too late' });

    expect(result.statuses).toEqual([200]);
    expect(result.modal).toBeUndefined();
    expect(result.ephemeral).toEqual([
      expect.objectContaining({ user: APPROVER, text: expect.stringMatching(new RegExp(`already accepted by ${LOCAL_APPROVER_ARN} at .*Nothing was changed`)) }),
    ]);
    expect((await stack.record(serviceId, endpointId))?.decision).toMatchObject({ outcome: 'accept', decidedBy: LOCAL_APPROVER_ARN, reason: 'ticket OPS-7' });
    const updated = await messageShowing(endpointId, 'Accepted');
    expect(shown(updated)).toContain(LOCAL_APPROVER_ARN);
    expect(buttons(updated)).toEqual([]);
  });

  it('shows a revocation through the API, and a policy accepting a held request', async () => {
    const revokedOne = await heldRequest();
    const byPolicy = await heldRequest(revokedOne.serviceId);
    await approver.request('POST', `/services/${revokedOne.serviceId}/connections/${revokedOne.endpointId}/accept`, { body: { reason: 'trial' } });
    await messageShowing(revokedOne.endpointId, 'Accepted');

    await approver.request('POST', `/services/${revokedOne.serviceId}/connections/${revokedOne.endpointId}/revoke`, { body: { reason: 'trial over' } });
    const policy = await approver.request('GET', '/policies/default');
    const put = await approver.request('PUT', '/policies/default', {
      body: { allow: [{ account: ALLOWED, label: 'acme-prod' }, { account: STRANGER, label: 'new-customer' }], onUnmatched: 'hold' },
      headers: { 'if-match': `"${(policy.body as { version: number }).version}"` },
    });
    expect(put.status).toBe(200);
    await stack.reconcile();

    expect(shown(await messageShowing(revokedOne.endpointId, 'Revoked'))).toContain('trial over');
    const accepted = await messageShowing(byPolicy.endpointId, 'Accepted');
    expect(shown(accepted)).toContain('by policy (rule allow:new-customer)');
  });

  it('shows the conflict in the modal when EC2 was decided behind the record; once recorded, a click brings the message up to date', async () => {
    const { serviceId, endpointId, message } = await heldRequest();
    // Someone accepts in the EC2 console; the notification of it is lost.
    await stack.faults({ dropNotifications: 1 });
    await stack.ec2Client().send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [endpointId] }));

    const refused = await click({ ts: message.ts, actionId: 'reject', userId: APPROVER, reason: 'not this one' });
    await stack.faults({});
    await stack.reconcile();
    const later = await click({ ts: message.ts, actionId: 'reject', userId: APPROVER, reason: 'not this one' });

    expect(refused.statuses).toEqual([200, 200]);
    expect(refused.modal).toMatchObject({ outcome: 'errors', errors: { reason: expect.stringMatching(/^Conflict: connection .* (is already admitted|was decided elsewhere)/) } });
    expect(await ec2State(serviceId, endpointId)).toMatch(/^(pending|available)$/);
    expect(later.ephemeral).toEqual([expect.objectContaining({ text: expect.stringContaining('This request was already accepted') })]);
    const updated = await messageShowing(endpointId, 'Accepted');
    expect(shown(updated)).toContain('someone outside vpce-gatekeeper');
    expect(buttons(updated)).toEqual([]);
  });
});

describe('reminders', () => {
  it("answers a request still waiting after its policy's pendingTimeout in its message's thread", async () => {
    const { serviceId } = await stack.createService();
    const put = await approver.request('PUT', `/policies/${serviceId}`, { body: { onUnmatched: 'hold', pendingTimeout: 'PT2S', onPendingTimeout: 'remind' } });
    expect(put.status).toBe(201);
    const { endpointId, message } = await heldRequest(serviceId);

    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await stack.reconcile();

    const reminded = await stack.waitFor(async () => {
      const current = await messageAbout(endpointId);
      return current?.replies.length ? current : undefined;
    }, { description: 'the reminder in the thread' });
    expect(reminded.ts).toBe(message.ts);
    expect(reminded.replies).toEqual([expect.objectContaining({ text: expect.stringContaining('Still waiting for an approver: held since') })]);
    expect(buttons(reminded)).toEqual(['accept', 'reject']);
  });
});

describe('the interactions route', () => {
  /** A modal submission as Slack sends it, accepting a connection as the approver. */
  function submission(serviceId: string, endpointId: string, ts: string): string {
    const payload = {
      type: 'view_submission',
      team: { id: SLACK_TEAM, domain: 'vpce-gatekeeper-local' },
      user: { id: APPROVER, username: 'local-approver', name: 'local-approver', team_id: SLACK_TEAM },
      api_app_id: 'A0LOCALAPP',
      view: {
        id: 'V0FORGED',
        type: 'modal',
        callback_id: 'decide-connection',
        private_metadata: JSON.stringify({ serviceId, endpointId, action: 'accept', channel: 'C0LOCALAPPROVALS', ts }),
        state: { values: { reason: { reason: { type: 'plain_text_input', value: 'forged' } } } },
      },
    };
    return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  }

  async function post(body: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${stack.baseUrl}/chat/slack/interactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  const now = () => String(Math.floor(Date.now() / 1000));

  it('refuses unsigned, forged, stale and replayed requests with 401, and changes nothing', async () => {
    const { serviceId, endpointId, message } = await heldRequest();
    const before = await stack.record(serviceId, endpointId);
    const body = submission(serviceId, endpointId, message.ts);
    const stale = String(Math.floor(Date.now() / 1000) - 6 * 60);
    const at = now();

    const unsigned = await post(body, {});
    const forged = await post(body, { 'x-slack-request-timestamp': at, 'x-slack-signature': slackSignature('not-the-signing-secret', at, body) });
    const old = await post(body, { 'x-slack-request-timestamp': stale, 'x-slack-signature': slackSignature(SIGNING_SECRET, stale, body) });
    const tampered = await post(body.replace('forged', 'f0rged'), { 'x-slack-request-timestamp': at, 'x-slack-signature': slackSignature(SIGNING_SECRET, at, body) });

    for (const refused of [unsigned, forged, old, tampered]) {
      expect(refused).toEqual({ status: 401, body: { error: { code: 'Unauthorized', message: expect.stringContaining('not a request signed by Slack') } } });
    }
    expect(await stack.record(serviceId, endpointId)).toEqual(before);
    expect(await ec2State(serviceId, endpointId)).toBe('pendingAcceptance');
  });

  it('accepts a signed request once, and refuses the same request sent again', async () => {
    const { serviceId, endpointId, message } = await heldRequest();
    const body = submission(serviceId, endpointId, message.ts);
    const at = now();
    const headers = { 'x-slack-request-timestamp': at, 'x-slack-signature': slackSignature(SIGNING_SECRET, at, body) };

    const first = await post(body, headers);
    const decided = await stack.record(serviceId, endpointId);
    const replayed = await post(body, headers);

    expect(first.status).toBe(200);
    expect(decided?.decision).toMatchObject({ outcome: 'accept', decidedBy: `slack:${SLACK_TEAM}/${APPROVER}`, reason: 'forged' });
    expect(replayed).toEqual({ status: 401, body: { error: { code: 'Unauthorized', message: expect.stringContaining('replayed') } } });
    expect(await stack.record(serviceId, endpointId)).toEqual(decided);
  });
});
