import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_APPROVER, signedClient } from './approvals-client';
import { startLocalStack, eventTypesFor, type LocalStack } from './local-stack';

// The reconciler end to end: notifications lost, state that moved without one,
// thousands of connections, enforcement and its safety limit, pending timeouts.

const ALLOWED = '111122223333';
const PARTNER = '210987654321';
const DENIED = '444455556666';
const STRANGER = '999988887777';
const ENFORCED = 'vpce-svc-0000000000000000b';
const TIMES_OUT = 'vpce-svc-0000000000000000c';
const REMINDS = 'vpce-svc-0000000000000000d';

const DEFAULT_POLICY = {
  allow: [{ account: ALLOWED, label: 'acme-prod' }],
  deny: [{ account: DENIED, label: 'offboarded' }],
  onUnmatched: 'hold',
};
const ENFORCED_POLICY = {
  allow: [
    { account: ALLOWED, label: 'acme-prod' },
    { account: PARTNER, label: 'partner' },
  ],
  enforce: true,
  maxRevocationsPerRun: 2,
  maxRevocationPercent: 100,
};

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: {
      default: DEFAULT_POLICY,
      [ENFORCED]: ENFORCED_POLICY,
      [TIMES_OUT]: { ...DEFAULT_POLICY, pendingTimeout: 'PT1S', onPendingTimeout: 'reject' },
      [REMINDS]: { ...DEFAULT_POLICY, pendingTimeout: 'PT1S', onPendingTimeout: 'remind' },
    },
    // The functions' embedded metrics, as CloudWatch would receive them, are asserted below.
    env: { LOG_FORMAT: 'json' },
  });
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function statesOf(serviceId: string): Promise<Record<string, string>> {
  return Object.fromEntries((await stack.listEndpoints(serviceId)).map((e) => [e.vpcEndpointId, e.state]));
}

/** Replaces a policy through the approvals API, as an approver would. */
async function replacePolicy(policyId: string, policy: Record<string, unknown>): Promise<void> {
  const approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
  const current = await approver.request('GET', `/policies/${policyId}`);
  const { version } = current.body as { version: number };
  const replaced = await approver.request('PUT', `/policies/${policyId}`, { body: policy, headers: { 'if-match': `"${version}"` } });
  if (replaced.status !== 200) throw new Error(`PUT /policies/${policyId} answered ${replaced.status}: ${JSON.stringify(replaced.body)}`);
}

describe('reconciling what notifications missed', () => {
  it('decides connections whose notifications were all lost, and records drift as reconciled', async () => {
    await stack.faults({ dropNotifications: 1 });
    const { serviceId } = await stack.createService();
    const allowed = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    const denied = await stack.createEndpoint(serviceId, { ownerAccountId: DENIED });
    const unmatched = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(() => stack.idle());
    expect((await stack.notifications()).every((n) => n.dropped)).toBe(true);
    expect(await stack.record(serviceId, allowed.vpcEndpointId)).toBeUndefined();

    const summary = await stack.reconcile();

    expect(summary.totals).toMatchObject({ connections: 3, firstSeen: 3, accepted: 1, rejected: 1, pending: 1, failed: 0, failedServices: 0 });
    const states = await statesOf(serviceId);
    expect(states[allowed.vpcEndpointId]).toMatch(/^(pending|available)$/);
    expect(states[denied.vpcEndpointId]).toBe('rejected');
    expect(states[unmatched.vpcEndpointId]).toBe('pendingAcceptance');
    expect((await stack.record(serviceId, allowed.vpcEndpointId))?.history[0]).toMatchObject({ type: 'first-seen', source: 'reconciled' });
    const outbox = await stack.outbox();
    expect(eventTypesFor(outbox, allowed.vpcEndpointId)).toEqual(['accepted']);
    expect(eventTypesFor(outbox, denied.vpcEndpointId)).toEqual(['rejected']);
    expect(eventTypesFor(outbox, unmatched.vpcEndpointId)).toEqual(['approval-needed']);

    // pending -> available happens in EC2 with no notification to say so (they are lost)
    await stack.waitFor(async () => (await statesOf(serviceId))[allowed.vpcEndpointId] === 'available');
    const again = await stack.reconcile();

    expect(again.totals).toMatchObject({ stateChanged: 1, accepted: 0, rejected: 0, firstSeen: 0 });
    expect((await stack.record(serviceId, allowed.vpcEndpointId))?.history.at(-1)).toMatchObject({
      type: 'state-changed',
      from: 'pending',
      to: 'available',
      source: 'reconciled',
    });
    expect(eventTypesFor(await stack.outbox(), unmatched.vpcEndpointId)).toEqual(['approval-needed']); // not announced twice
    expect(stack.output()).toContain('"DriftRepaired"'); // embedded metric format on stdout
  });

  it('pages through 5,000 connections of one service and accepts them in batches, each exactly once', async () => {
    await stack.faults({ dropNotifications: 1 });
    const { serviceId } = await stack.createService();
    const { vpcEndpointIds } = await stack.createEndpoints(serviceId, { ownerAccountId: ALLOWED, count: 5000 });
    await stack.waitFor(() => stack.idle());

    const summary = await stack.reconcile();

    expect(summary.totals).toMatchObject({ connections: 5000, firstSeen: 5000, accepted: 5000, failed: 0 });
    const calls = await stack.calls();
    expect(calls.byAction.DescribeVpcEndpointConnections?.received).toBe(5); // pages of 1,000
    expect(calls.byAction.AcceptVpcEndpointConnections?.received).toBe(50); // batches of 100
    expect(vpcEndpointIds.filter((id) => calls.byEndpoint[id]?.AcceptVpcEndpointConnections?.received !== 1)).toEqual([]);
    expect(Object.values(await statesOf(serviceId)).filter((state) => state === 'pendingAcceptance')).toEqual([]);
    expect((await stack.outbox()).length).toBe(5000);
  });

  it('decides every connection exactly once when 30% of EC2 calls fail with 5xx', async () => {
    await stack.faults({ ec2ErrorRate: 0.3 });
    const { serviceId } = await stack.createService();
    // A batch of 20 makes only a few EC2 calls, which a 30% fault can miss: rounds of 20
    // until it has bitten (five rounds miss it with a chance of about 1 in 1,000).
    const failedCalls = async () => Object.values((await stack.calls()).byAction).reduce((failed, count) => failed + count.failed, 0);
    const ids: string[] = [];
    for (let round = 0; round < 5 && (round === 0 || (await failedCalls()) === 0); round++) {
      const endpoints = await Promise.all(Array.from({ length: 20 }, () => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })));
      ids.push(...endpoints.map((e) => e.vpcEndpointId));
      await stack.waitFor(async () => Object.values(await statesOf(serviceId)).every((state) => state === 'available') && (await stack.idle()), {
        timeoutMs: 30_000,
        description: 'every connection accepted',
      });
    }

    const summary = await stack.reconcile();

    expect(summary.totals).toMatchObject({ connections: ids.length, accepted: 0, failed: 0 }); // nothing left to decide
    const calls = await stack.calls();
    expect(await failedCalls()).toBeGreaterThan(0); // the fault did bite
    for (const id of ids) {
      const accepts = calls.byEndpoint[id]?.AcceptVpcEndpointConnections;
      expect((accepts?.received ?? 0) - (accepts?.failed ?? 0)).toBe(1);
      expect((await stack.record(serviceId, id))?.history.filter((e) => e.type === 'decision')).toHaveLength(1);
    }
  });
});

describe('enforcement', () => {
  it('withholds revocations beyond the safety limit and alerts, then revokes once a human raises the limit', async () => {
    const { serviceId } = await stack.createService({ serviceId: ENFORCED });
    const partner = await Promise.all([1, 2, 3].map(() => stack.createEndpoint(serviceId, { ownerAccountId: PARTNER })));
    const customer = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    const partnerIds = partner.map((e) => e.vpcEndpointId);
    await stack.waitFor(async () => Object.values(await statesOf(serviceId)).every((state) => state === 'available') && (await stack.idle()), {
      description: 'every connection accepted and available',
    });

    // The partner leaves the allow list: three revocations, more than the two allowed per run.
    await replacePolicy(ENFORCED, { ...ENFORCED_POLICY, allow: [{ account: ALLOWED, label: 'acme-prod' }] });
    const withheld = await stack.reconcile();

    expect(withheld.services[0]).toMatchObject({ revoked: 0, revocationLimit: { candidates: 3, admitted: 4, maxRevocationsPerRun: 2 } });
    expect(Object.values(await statesOf(serviceId))).toEqual(['available', 'available', 'available', 'available']);
    const alert = (await stack.outbox()).map((m) => m.message as Record<string, unknown>).find((m) => m.eventType === 'revocation-limit-reached');
    expect(alert).toMatchObject({ serviceId, policyId: ENFORCED, candidateCount: 3, limits: { maxRevocationsPerRun: 2, maxRevocationPercent: 100 } });
    expect((alert?.candidates as { rule: string }[]).map((c) => c.rule)).toEqual(['enforce:no-longer-allowed', 'enforce:no-longer-allowed', 'enforce:no-longer-allowed']);
    expect((await stack.calls()).byAction.RejectVpcEndpointConnections).toBeUndefined();

    // A human decides: the partner is offboarded for good, and the limit raised for this run.
    await replacePolicy(ENFORCED, {
      ...ENFORCED_POLICY,
      allow: [{ account: ALLOWED, label: 'acme-prod' }],
      deny: [{ account: PARTNER, label: 'offboarded-partner' }],
      maxRevocationsPerRun: 5,
    });
    const revoked = await stack.reconcile();

    expect(revoked.services[0]).toMatchObject({ revoked: 3, failed: 0 });
    expect(revoked.services[0]?.revocationLimit).toBeUndefined();
    const states = await statesOf(serviceId);
    expect(partnerIds.map((id) => states[id])).toEqual(['rejected', 'rejected', 'rejected']);
    expect(states[customer.vpcEndpointId]).toBe('available');
    expect((await stack.calls()).byAction.RejectVpcEndpointConnections?.received).toBe(1); // one batch
    const revokedRecord = await stack.record(serviceId, partnerIds[0] ?? '');
    expect(revokedRecord?.decision).toMatchObject({ outcome: 'reject', acted: true, rule: 'enforce:deny:offboarded-partner', decidedBy: 'policy' });
    expect(revokedRecord?.decision?.reason).toBe(`account ${PARTNER} matched deny entry 'offboarded-partner', so its connection is revoked`);
    const outbox = await stack.outbox();
    for (const id of partnerIds) expect(eventTypesFor(outbox, id)).toEqual(['accepted', 'rejected']);
    expect(eventTypesFor(outbox, customer.vpcEndpointId)).toEqual(['accepted']);
  });
});

describe('pending timeouts', () => {
  it('rejects a request still pending after the policy\'s pendingTimeout', async () => {
    const { serviceId } = await stack.createService({ serviceId: TIMES_OUT });
    const held = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => eventTypesFor(await stack.outbox(), held.vpcEndpointId).includes('approval-needed'));

    await stack.waitFor(async () => (await stack.reconcile()).totals.timedOut === 1, { description: 'a run that rejects the timed-out request' });

    expect((await statesOf(serviceId))[held.vpcEndpointId]).toBe('rejected');
    expect((await stack.record(serviceId, held.vpcEndpointId))?.decision).toMatchObject({ outcome: 'reject', rule: 'pendingTimeout:reject', acted: true });
    expect(eventTypesFor(await stack.outbox(), held.vpcEndpointId)).toEqual(['approval-needed', 'rejected']);
    expect((await stack.calls()).byEndpoint[held.vpcEndpointId]?.RejectVpcEndpointConnections?.received).toBe(1);
  });

  it('reminds approvers of a request still pending, and leaves it pending', async () => {
    const { serviceId } = await stack.createService({ serviceId: REMINDS });
    const held = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => eventTypesFor(await stack.outbox(), held.vpcEndpointId).includes('approval-needed'));

    await stack.waitFor(async () => (await stack.reconcile()).totals.reminded === 1, { description: 'a run that sends a reminder' });

    expect((await statesOf(serviceId))[held.vpcEndpointId]).toBe('pendingAcceptance');
    const reminder = (await stack.outbox()).map((m) => m.message as Record<string, unknown>).find((m) => m.eventType === 'approval-reminder');
    expect(reminder).toMatchObject({
      endpointId: held.vpcEndpointId,
      actions: { accept: `/services/${serviceId}/connections/${held.vpcEndpointId}/accept`, reject: expect.any(String) },
    });
    const stored = await stack.record(serviceId, held.vpcEndpointId);
    expect(stored?.remindedAt).toEqual(expect.any(String));
    expect(stored?.history.filter((e) => e.type === 'reminded')).toHaveLength(1);
  });
});
