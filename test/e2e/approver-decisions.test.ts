import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { LOCAL_APPROVER, LOCAL_APPROVER_ARN, signedClient } from './approvals-client';
import { eventTypesFor, startLocalStack, type LocalStack } from './local-stack';

// Approvers' decisions through the approvals API, on a stage that manages one
// configured service plus the ones tagged vpce-gatekeeper:managed=true.

const STRANGER = '999988887777';
const ALLOWED = '111122223333';
const CONFIGURED = 'vpce-svc-0c0c0c0c0c0c0c0c0';
const MANAGED_TAG = { 'vpce-gatekeeper:managed': 'true' };

let stack: LocalStack;
let approver: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' } },
    env: { MANAGED_SERVICE_IDS: CONFIGURED, RECONCILE_TAGGED_SERVICES: 'true' },
  });
  approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function ec2State(serviceId: string, endpointId: string): Promise<string | undefined> {
  return (await stack.listEndpoints(serviceId)).find((e) => e.vpcEndpointId === endpointId)?.state;
}

describe('a service managed because it is tagged', () => {
  it('holds its request, then accepts it through the approvals API at the approval-needed link', async () => {
    const { serviceId } = await stack.createService({ tags: MANAGED_TAG });
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => (await stack.record(serviceId, vpcEndpointId))?.decision?.outcome === 'hold' && (await stack.idle()));
    const needed = (await stack.outbox()).find((m) => (m.message as { eventType: string }).eventType === 'approval-needed');
    const acceptPath = (needed?.message as { actions: { accept: string } }).actions.accept;

    const shown = await approver.request('GET', `/services/${serviceId}/connections/${vpcEndpointId}`);
    const accepted = await approver.request('POST', acceptPath, { body: { reason: 'tagged service, ticket OPS-7' } });

    expect(shown.status).toBe(200);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ endpointId: vpcEndpointId, decision: { outcome: 'accept', rule: 'approver' } });
    expect(await ec2State(serviceId, vpcEndpointId)).toMatch(/^(pending|available)$/);
    expect(eventTypesFor(await stack.outbox(), vpcEndpointId)).toEqual(['approval-needed', 'accepted']);
  });

  it('leaves an untagged service that is not configured alone: nothing recorded, and the API answers 404', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(() => stack.idle());

    const shown = await approver.request('GET', `/services/${serviceId}/connections/${vpcEndpointId}`);
    const accepted = await approver.request('POST', `/services/${serviceId}/connections/${vpcEndpointId}/accept`, { body: { reason: 'x' } });

    expect(await stack.record(serviceId, vpcEndpointId)).toBeUndefined();
    expect(shown.status).toBe(404);
    expect(accepted.status).toBe(404);
    expect(await ec2State(serviceId, vpcEndpointId)).toBe('pendingAcceptance');
  });
});

const decide = (action: 'accept' | 'reject' | 'revoke', serviceId: string, endpointId: string, reason = 'checked with the account owner') =>
  approver.request('POST', `/services/${serviceId}/connections/${endpointId}/${action}`, { body: { reason } });

async function acceptCalls(endpointId: string): Promise<number> {
  const count = (await stack.calls()).byEndpoint[endpointId]?.AcceptVpcEndpointConnections;
  return (count?.received ?? 0) - (count?.failed ?? 0);
}

/** A request held for approvers on the configured service, recorded and announced. */
async function heldRequest(): Promise<string> {
  await stack.createService({ serviceId: CONFIGURED }).catch(() => undefined);
  const { vpcEndpointId } = await stack.createEndpoint(CONFIGURED, { ownerAccountId: STRANGER });
  await stack.waitFor(async () => (await stack.record(CONFIGURED, vpcEndpointId))?.decision?.outcome === 'hold' && (await stack.idle()));
  return vpcEndpointId;
}

describe('conflicting decisions', () => {
  it('lets the first of an accept and a reject sent at once win, and tells the other who decided what, with 409', async () => {
    for (let round = 0; round < 4; round++) {
      const endpointId = await heldRequest();

      const [accepted, rejected] = await Promise.all([
        decide('accept', CONFIGURED, endpointId, 'ticket OPS-1'),
        decide('reject', CONFIGURED, endpointId, 'ticket OPS-2'),
      ]);

      expect([accepted.status, rejected.status].sort()).toEqual([200, 409]);
      const loser = accepted.status === 409 ? accepted : rejected;
      expect(loser.body).toEqual({ error: { code: 'Conflict', message: expect.stringMatching(/(accept|reject)ed by|being (accept|reject)ed by/) } });
      const record = await stack.record(CONFIGURED, endpointId);
      const winner = accepted.status === 200 ? 'accept' : 'reject';
      expect(record?.decision).toMatchObject({ outcome: winner, acted: true, decidedBy: LOCAL_APPROVER_ARN });
      expect((await stack.listEndpoints(CONFIGURED)).find((e) => e.vpcEndpointId === endpointId)?.state).toMatch(
        winner === 'accept' ? /^(pending|available)$/ : /^rejected$/,
      );
      // never a silent revoke: an accepted connection stays admitted
      expect(eventTypesFor(await stack.outbox(), endpointId).filter((type) => type === 'accepted' || type === 'rejected')).toEqual([
        `${winner}ed`,
      ]);
    }
  });

  it('revokes an admitted connection only through revoke, recorded and announced like a reject', async () => {
    const endpointId = await heldRequest();
    await decide('accept', CONFIGURED, endpointId);

    const rejected = await decide('reject', CONFIGURED, endpointId, 'changed my mind');
    const revoked = await decide('revoke', CONFIGURED, endpointId, 'contract ended');
    const revokedAgain = await decide('revoke', CONFIGURED, endpointId, 'again');

    expect(rejected.status).toBe(409);
    expect(rejected.body).toEqual({ error: { code: 'Conflict', message: expect.stringContaining('POST …/revoke') } });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ state: 'rejected', decision: { outcome: 'reject', rule: 'approver:revoke', reason: 'contract ended' } });
    expect(revokedAgain.status).toBe(409);
    expect(eventTypesFor(await stack.outbox(), endpointId)).toEqual(['approval-needed', 'accepted', 'rejected']);
  });
});

describe('EC2 failing during an approver\'s decision', () => {
  it('answers 502 when EC2 fails, leaves nothing claimed, and lets the next attempt through', async () => {
    const endpointId = await heldRequest();
    await stack.faults({ ec2ErrorRate: 1 });

    const failed = await decide('accept', CONFIGURED, endpointId);
    await stack.faults({});
    const retried = await decide('accept', CONFIGURED, endpointId);

    expect(failed.status).toBe(502);
    expect(failed.body).toEqual({ error: { code: 'ActionFailed', message: expect.any(String) } });
    expect(retried.status).toBe(200);
    expect(await acceptCalls(endpointId)).toBe(1);
  });
});
