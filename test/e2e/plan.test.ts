import type { PolicyPlan } from '../../lib/policy-plan';
import { DescribeVpcEndpointConnectionsCommand } from '@aws-sdk/client-ec2';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { errorResponse } from '../../lib/http/responses';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { LOCAL_APPROVER, LOCAL_VIEWER, signedClient } from './approvals-client';
import { startLocalStack, type LocalStack } from './local-stack';

// POST /policies/{policyId}/plan through `npm start`: what saving a candidate would
// do to the connections it governs, before anything is saved.

const ALLOWED = '111122223333';
const STRANGER = '999988887777';
const OTHER = '555566667777';
const DEFAULT_POLICY = { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' };

type Plan = PolicyPlan;

let stack: LocalStack;
let approver: ApprovalsClient;
let viewer: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({ policy: { default: DEFAULT_POLICY } });
  approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
  viewer = signedClient(stack.baseUrl, LOCAL_VIEWER);
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

/** A service with `admitted` connections of ALLOWED (accepted by the policy, now available) and one held request of STRANGER. */
async function serviceWithTraffic(admitted: number): Promise<{ serviceId: string; admittedIds: string[]; heldId: string }> {
  const { serviceId } = await stack.createService();
  const { vpcEndpointIds: admittedIds } = await stack.createEndpoints(serviceId, { ownerAccountId: ALLOWED, count: admitted });
  const { vpcEndpointId: heldId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
  await stack.waitFor(
    async () => {
      const endpoints = await stack.listEndpoints(serviceId);
      const held = await stack.record(serviceId, heldId);
      return endpoints.filter((e) => e.state === 'available').length === admitted && held?.decision?.outcome === 'hold' && (await stack.idle());
    },
    { timeoutMs: 30_000, description: `${admitted} admitted and 1 held connection on ${serviceId}` },
  );
  return { serviceId, admittedIds, heldId };
}

async function plan(client: ApprovalsClient, policyId: string, candidate: unknown): Promise<{ status: number; body: unknown }> {
  return client.request('POST', `/policies/${policyId}/plan`, { body: candidate });
}

/** Everything a plan could have changed: the table, EC2's mutating calls, the endpoints' states, published events. */
async function everything(serviceId: string): Promise<unknown> {
  const { db, tableName } = await stack.table();
  const items = (await db.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }))).Items ?? [];
  items.sort((a, b) => `${String(a.pk)}|${String(a.sk)}`.localeCompare(`${String(b.pk)}|${String(b.sk)}`));
  const { byAction } = await stack.calls();
  return {
    items,
    accepts: byAction.AcceptVpcEndpointConnections?.received ?? 0,
    rejects: byAction.RejectVpcEndpointConnections?.received ?? 0,
    endpoints: await stack.listEndpoints(serviceId),
    published: (await stack.outbox()).length,
  };
}

describe('POST /policies/{policyId}/plan', () => {
  it('shows a held request that the candidate would accept, and keeps the admitted ones', async () => {
    const { serviceId, admittedIds, heldId } = await serviceWithTraffic(2);

    const response = await plan(approver, 'default', { allow: [{ account: ALLOWED, label: 'acme-prod' }, { account: STRANGER, label: 'newcomer' }] });

    expect(response.status).toBe(200);
    const body = response.body as Plan;
    expect(body.policyId).toBe('default');
    expect(body.baseVersion).toBe(1);
    expect(body.changes).toEqual([
      {
        serviceId,
        endpointId: heldId,
        ownerAccountId: STRANGER,
        state: 'pendingAcceptance',
        current: { outcome: 'hold', rule: 'onUnmatched:hold' },
        planned: { outcome: 'accept', rule: 'allow:newcomer', reason: expect.stringContaining(STRANGER) },
        effect: 'accept',
      },
    ]);
    expect(body.summary).toEqual({ accept: 1, reject: 0, revoke: 0, hold: 0, unreadable: 0, unchanged: admittedIds.length });
  });

  it('shows the requests an onUnmatched reject would turn away', async () => {
    const { heldId } = await serviceWithTraffic(1);

    const body = (await plan(approver, 'default', { ...DEFAULT_POLICY, onUnmatched: 'reject' })).body as Plan;

    expect(body.changes.map((c) => [c.endpointId, c.effect, c.planned.rule])).toEqual([[heldId, 'reject', 'onUnmatched:reject']]);
    expect(body.summary).toMatchObject({ reject: 1, unchanged: 1 });
  });

  it('lists the admitted connections an enforcing candidate would revoke, within the safety limit', async () => {
    const { admittedIds } = await serviceWithTraffic(2);

    const candidate = { allow: [{ account: OTHER }], enforce: true, maxRevocationsPerRun: 5, maxRevocationPercent: 100 };
    const body = (await plan(approver, 'default', candidate)).body as Plan;

    const revoked = body.changes.filter((c) => c.effect === 'revoke');
    expect(revoked.map((c) => c.endpointId).sort()).toEqual([...admittedIds].sort());
    expect(revoked[0]).toMatchObject({
      ownerAccountId: ALLOWED,
      state: 'available',
      current: { outcome: 'accept', rule: 'allow:acme-prod' },
      planned: { outcome: 'reject', rule: 'enforce:no-longer-allowed' },
    });
    expect(body.summary).toEqual({ accept: 0, reject: 0, revoke: 2, hold: 1, unreadable: 0, unchanged: 0 });
    expect(body.revocationLimit).toEqual([]);
  });

  it('says when enforcement would trip the safety limit, and revokes nothing then, as the reconciler does', async () => {
    const { serviceId } = await serviceWithTraffic(3);

    // The default limit: at most 10% of the admitted connections per run; 3 of 3 is far over it.
    const body = (await plan(approver, 'default', { allow: [{ account: OTHER }], enforce: true })).body as Plan;

    expect(body.summary).toEqual({ accept: 0, reject: 0, revoke: 0, hold: 4, unreadable: 0, unchanged: 0 });
    expect(body.revocationLimit).toEqual([{ serviceId, candidates: 3, admitted: 3, maxRevocationsPerRun: 10, maxRevocationPercent: 10 }]);
    const withheld = body.changes.filter((c) => c.state === 'available');
    expect(withheld).toHaveLength(3);
    for (const change of withheld) expect(change.planned.reason).toMatch(/safety limit.*revokes none/);

    // The reconciler, run with that policy saved, agrees.
    const current = await approver.request('GET', '/policies/default');
    await approver.request('PUT', '/policies/default', {
      body: { allow: [{ account: OTHER }], enforce: true },
      headers: { 'if-match': current.headers.get('etag') ?? '' },
    });
    const run = await stack.reconcile();
    expect(run.services.find((s) => s.serviceId === serviceId)?.revocationLimit).toEqual({ candidates: 3, admitted: 3, maxRevocationsPerRun: 10, maxRevocationPercent: 10 });
  });

  it('plans a service of its own against that service only, with no base version before its first save', async () => {
    const { serviceId, heldId } = await serviceWithTraffic(1);
    await serviceWithTraffic(1); // another service, governed by the default policy

    const body = (await plan(approver, serviceId, { mode: 'manual' })).body as Plan;

    expect(body.baseVersion).toBeNull();
    expect(body.changes.map((c) => [c.serviceId, c.endpointId, c.effect, c.planned.rule])).toEqual([[serviceId, heldId, 'hold', 'mode:manual']]);
  });

  it('refuses a viewer with 403 saying that only approvers plan, and reads nothing from EC2', async () => {
    const { serviceId } = await serviceWithTraffic(1);
    const before = (await stack.calls()).byAction.DescribeVpcEndpointConnections?.received ?? 0;

    const refused = await plan(viewer, serviceId, { mode: 'manual' });

    expect(refused.status).toBe(403);
    expect((refused.body as { error: { message: string } }).error.message).toMatch(/local-viewer is not an approver: .*plan/);
    expect((await stack.calls()).byAction.DescribeVpcEndpointConnections?.received ?? 0).toBe(before);
  });

  it("answers EC2's throttling, as the SDK throws it off the wire, with 503 and a Retry-After", async () => {
    await stack.faults({ ec2ThrottleRate: 1 });
    const thrown = await stack
      .ec2Client({ maxAttempts: 1 })
      .send(new DescribeVpcEndpointConnectionsCommand({}))
      .catch((error: unknown) => error);

    const response = errorResponse(thrown, 'req-1');

    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body ?? '{}')).toEqual({ error: { code: 'EC2Throttled', message: expect.stringContaining('RequestLimitExceeded') } });
    expect(response.headers).toMatchObject({ 'retry-after': '1', 'x-content-type-options': 'nosniff' });
  });

  it('refuses an invalid candidate with 400 naming the field', async () => {
    const bad = await plan(approver, 'default', { mode: 'sometimes', allow: [{ account: '12345' }] });
    expect(bad.status).toBe(400);
    expect((bad.body as { error: { message: string } }).error.message).toMatch(/mode: must be auto, manual or observe/);
    expect((bad.body as { error: { message: string } }).error.message).toMatch(/allow\[0\]\.account/);

    const unknownField = await plan(approver, 'default', { allow: [], enforced: true });
    expect(unknownField.status).toBe(400);
    expect((unknownField.body as { error: { message: string } }).error.message).toContain("'enforced'");
  });

  it('changes nothing: the table, EC2 and the published events are as they were', async () => {
    const { serviceId } = await serviceWithTraffic(2);
    const before = await everything(serviceId);

    await plan(approver, 'default', { allow: [{ account: STRANGER }], enforce: true, maxRevocationPercent: 100 });
    await plan(approver, 'default', { allow: [{ account: STRANGER }], onUnmatched: 'reject' });
    await plan(approver, serviceId, { deny: [{ account: ALLOWED }], enforce: true });

    expect(await everything(serviceId)).toEqual(before);
  });
});

describe("a viewer's flood of plans", () => {
  const SERVICES = 20;
  const FLOOD_SECONDS = 10;
  const FLOOD_PER_SECOND = 10; // a stage's default API rate

  it('is refused before it reads EC2, so a burst of Connects is decided as usual meanwhile', async () => {
    // Twenty services with an admitted connection each: a plan of the default policy would read every one.
    const services = await Promise.all(Array.from({ length: SERVICES }, () => stack.createService()));
    await Promise.all(services.map(({ serviceId }) => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })));
    await stack.waitFor(async () => (await Promise.all(services.map(async ({ serviceId }) => (await stack.listEndpoints(serviceId))[0]?.state === 'available'))).every(Boolean), {
      timeoutMs: 30_000,
      description: 'an admitted connection on every service',
    });
    await stack.waitFor(() => stack.idle());
    await stack.faults({}); // EC2's rate buckets full again, and counted from here
    const callsBefore = (await stack.calls()).byAction.DescribeVpcEndpointConnections ?? { received: 0, failed: 0 };

    // Act: a viewer plans at the stage's rate for ten seconds; after one second, a burst of Connects arrives.
    const flood: Promise<{ status: number }>[] = [];
    const flooding = (async () => {
      for (let i = 0; i < FLOOD_SECONDS * FLOOD_PER_SECOND; i++) {
        // A request cut off when the stack stops (after a failed assertion) counts as status 0, not an unhandled rejection.
        flood.push(plan(viewer, 'default', { allow: [{ account: STRANGER }] }).catch(() => ({ status: 0 })));
        await new Promise((done) => setTimeout(done, 1000 / FLOOD_PER_SECOND));
      }
    })();
    await new Promise((done) => setTimeout(done, 1000));
    const burst = await Promise.all(services.map(({ serviceId }) => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED }).then(({ vpcEndpointId }) => ({ serviceId, vpcEndpointId }))));
    const connected = Date.now();
    await stack.waitFor(
      async () => (await Promise.all(burst.map(async ({ serviceId, vpcEndpointId }) => (await stack.record(serviceId, vpcEndpointId))?.decision?.outcome === 'accept'))).every(Boolean),
      { timeoutMs: 10_000, intervalMs: 250, description: `all ${SERVICES} Connects of the burst decided within 10 s, under the flood` },
    );
    const decidedAfterMs = Date.now() - connected;
    await flooding;
    const statuses = (await Promise.all(flood)).map((response) => response.status);

    // Assert: every plan refused, the burst decided, and no Describe of the decision path throttled.
    expect(new Set(statuses)).toEqual(new Set([403]));
    expect(statuses).toHaveLength(FLOOD_SECONDS * FLOOD_PER_SECOND);
    expect(decidedAfterMs).toBeLessThan(10_000);
    const callsAfter = (await stack.calls()).byAction.DescribeVpcEndpointConnections ?? { received: 0, failed: 0 };
    expect(callsAfter.failed - callsBefore.failed).toBe(0);
    expect(callsAfter.received - callsBefore.received).toBeLessThanOrEqual(SERVICES * 2);
  });
});
