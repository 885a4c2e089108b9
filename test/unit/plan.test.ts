import { describe, expect, it } from 'vitest';
import type { ConnectionRecord, ObservedConnection } from '../../lib/domain/connection';
import { workOf, type Intent } from '../../lib/domain/intents';
import type { Membership } from '../../lib/domain/organization';
import { planService, type PlanContext } from '../../lib/domain/plan';
import { previewOf, summarize } from '../../lib/domain/plan-preview';
import { parsePolicy, type Policy, type PolicyInForce } from '../../lib/domain/policy';
import type { AccountPlaces, ServiceSnapshot } from '../../lib/domain/snapshot';

// The planner without I/O: what a reconcile round does to one service, as the
// engine applies it and as a policy plan shows it.

const NOW = new Date('2026-11-23T12:00:00Z');
const SERVICE = 'vpce-svc-0123456789abcdef0';
const ALLOWED = '111122223333';
const DENIED = '444455556666';
let next = 0;
let ids = 0;
const context: PlanContext = { now: NOW, newId: () => `id-${++ids}`, leaseSeconds: 45 };

function connection(ownerAccountId: string, state: ObservedConnection['state']): ObservedConnection {
  next++;
  return { serviceId: SERVICE, endpointId: `vpce-${String(next).padStart(17, '0')}`, ownerAccountId, region: 'us-east-1', state };
}

function admittedByPolicy(c: ObservedConnection, rule = 'allow:x'): [string, ConnectionRecord] {
  const decision = { outcome: 'accept' as const, acted: true, rule, reason: 'r', decidedBy: 'policy', decidedAt: NOW.toISOString() };
  return [c.endpointId, { ...c, decision, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString(), version: 1, history: [] }];
}

function inForce(policy: Policy | undefined): PolicyInForce {
  return policy ? { kind: 'policy', stored: { policyId: SERVICE, version: 1, policy, createdAt: NOW.toISOString(), createdBy: 'test' } } : { kind: 'none' };
}

/** One service as a reconcile round reads it. */
function round(
  connections: ObservedConnection[],
  policy: Policy | undefined,
  extra: { records?: Map<string, ConnectionRecord>; today?: Policy; places?: Map<string, AccountPlaces>; intents?: Intent['kind'][] } = {},
): ServiceSnapshot {
  const kinds = extra.intents ?? ['reconcile', 'enforce', 'pending-timeout'];
  const work = workOf(kinds.map((kind) => ({ kind, serviceId: SERVICE }) as Intent)).services.get(SERVICE);
  if (!work) throw new Error('no work');
  return {
    work,
    policy: inForce(policy),
    ...(extra.today !== undefined ? { today: inForce(extra.today) } : {}),
    connections,
    unread: [],
    records: extra.records ?? new Map(),
    places: extra.places ?? new Map(),
  };
}

const noFacts = { memberships: new Map<string, Membership>(), confirmed: new Set<string>() };

/** The plan of one service, and the plan as a person reads it. */
function planned(service: ServiceSnapshot) {
  const plan = planService(service, noFacts, context);
  return { plan, preview: previewOf(service, plan, noFacts.memberships, NOW) };
}

describe('a round of one service', () => {
  it('counts the accepts it plans against maxEndpointsPerAccount, and writes the places they take first', () => {
    const admitted = connection(ALLOWED, 'available');
    const requests = [connection(ALLOWED, 'pendingAcceptance'), connection(ALLOWED, 'pendingAcceptance'), connection(ALLOWED, 'pendingAcceptance')];
    const policy = parsePolicy({ allow: [{ account: ALLOWED }], maxEndpointsPerAccount: 2 });
    const ec2 = new Map([admitted, ...requests].map((c) => [c.endpointId, c.state]));

    const { plan: plan, preview: planPreview } = planned(round([admitted, ...requests], policy, { places: new Map([[ALLOWED, { reserved: [], version: 0, ec2 }]]) }));

    expect(planPreview.changes.map((c) => c.effect)).toEqual(['accept', 'hold', 'hold']);
    expect(planPreview.changes[1]?.planned.reason).toContain('already has 2 endpoint(s) admitted');
    expect(plan.places).toEqual([{ accountId: ALLOWED, reserved: [admitted.endpointId, requests[0]?.endpointId], expectedVersion: 0 }]);
    expect(plan.connections.filter((c) => c.change.kind === 'act').map((c) => c.observed.endpointId)).toEqual([requests[0]?.endpointId]);
  });

  it('never revokes what an approver accepted by hand when the account is merely no longer allowed, but revokes a denied account', () => {
    const byHand = connection(ALLOWED, 'available');
    const denied = connection(DENIED, 'available');
    const policy = parsePolicy({ deny: [{ account: DENIED }], enforce: true, maxRevocationPercent: 100 });

    const { plan: plan, preview: planPreview } = planned(round([byHand, denied], policy, { records: new Map([admittedByPolicy(denied)]) }));

    expect(planPreview.changes.map((c) => [c.endpointId, c.effect])).toEqual([[denied.endpointId, 'revoke']]);
    expect(planPreview.unchanged).toBe(1);
    expect(plan.connections.find((c) => c.change.kind === 'act')).toMatchObject({ purpose: 'revoke', observed: { endpointId: denied.endpointId } });
  });

  it('revokes nothing when the policy does not act (observe mode), even with enforce', () => {
    const admitted = connection(ALLOWED, 'available');
    const policy = parsePolicy({ mode: 'observe', enforce: true, maxRevocationPercent: 100 });

    const { plan: plan, preview: planPreview } = planned(round([admitted], policy, { records: new Map([admittedByPolicy(admitted)]) }));

    expect(summarize([planPreview])).toEqual({ accept: 0, reject: 0, revoke: 0, hold: 0, unreadable: 0, unchanged: 1 });
  });

  it('counts the requests it accepts among the admitted connections the safety limit is a share of', () => {
    // 1 revocation of 1 admitted is 100%; with 9 requests accepted first, it is 10%: within the default limit.
    const leaving = connection(DENIED, 'available');
    const arriving = Array.from({ length: 9 }, () => connection(ALLOWED, 'pendingAcceptance'));
    const policy = parsePolicy({ allow: [{ account: ALLOWED }], deny: [{ account: DENIED }], enforce: true });

    const { plan: plan, preview: planPreview } = planned(round([leaving, ...arriving], policy));

    expect(summarize([planPreview])).toMatchObject({ accept: 9, revoke: 1 });
    expect(plan.revocationLimit).toBeUndefined();
  });

  it('holds every revocation back, and says why, beyond the safety limit', () => {
    const admitted = Array.from({ length: 3 }, () => connection(DENIED, 'available'));
    const policy = parsePolicy({ deny: [{ account: DENIED }], enforce: true, maxRevocationsPerRun: 2, maxRevocationPercent: 100 });

    const { plan: plan, preview: planPreview } = planned(round(admitted, policy, { records: new Map(admitted.map((c) => admittedByPolicy(c))) }));

    expect(plan.connections.some((c) => c.change.kind === 'act')).toBe(false);
    expect(plan.revocationLimit).toMatchObject({ admitted: 3, candidates: admitted.map((c) => expect.objectContaining({ endpointId: c.endpointId })) });
    expect(planPreview.changes.map((c) => c.effect)).toEqual(['hold', 'hold', 'hold']);
    expect(planPreview.revocationLimit).toMatchObject({ candidates: 3, admitted: 3, maxRevocationsPerRun: 2 });
  });

  it('leaves a request with an action under way to its holder, and says so', () => {
    const request = connection(ALLOWED, 'pendingAcceptance');
    const [, record] = admittedByPolicy(request);
    const claimed: ConnectionRecord = {
      ...record,
      decision: undefined,
      claim: { outcome: 'accept', from: 'pendingAcceptance', rule: 'approver', reason: 'r', decidedBy: 'alice', token: 't', leaseUntil: new Date(NOW.getTime() + 30_000).toISOString(), status: 'acting' },
    };

    const { plan: plan, preview: planPreview } = planned(round([request], parsePolicy({ onUnmatched: 'reject' }), { records: new Map([[request.endpointId, claimed]]) }));

    expect(planPreview.changes[0]).toMatchObject({ effect: 'hold', planned: { rule: 'in-progress' } });
    expect(plan.connections[0]?.change.kind).toBe('unchanged');
  });

  it('decides a request whose earlier action failed: a failed claim holds nothing', () => {
    const request = connection(DENIED, 'pendingAcceptance');
    const [, record] = admittedByPolicy(request);
    const failed: ConnectionRecord = {
      ...record,
      decision: undefined,
      claim: { outcome: 'reject', from: 'pendingAcceptance', rule: 'deny:x', reason: 'r', decidedBy: 'policy', token: 't', leaseUntil: new Date(NOW.getTime() + 30_000).toISOString(), status: 'failed' },
    };

    const { plan: plan, preview: planPreview } = planned(round([request], parsePolicy({ deny: [{ account: DENIED }] }), { records: new Map([[request.endpointId, failed]]) }));

    expect(planPreview.changes[0]).toMatchObject({ effect: 'reject', planned: { rule: `deny:${DENIED}` } });
    expect(plan.connections[0]?.change.kind).toBe('act');
  });

  it('rejects a request waiting past its pending timeout, and reminds about one under a remind policy', () => {
    const old = { ...connection('999988887777', 'pendingAcceptance'), createdAt: '2026-11-01T00:00:00Z' };
    const rejecting = parsePolicy({ pendingTimeout: 'P7D', onPendingTimeout: 'reject' });
    const reminding = parsePolicy({ pendingTimeout: 'P7D' });

    const { plan: rejected, preview: rejectedPreview } = planned(round([old], rejecting));
    const { plan: reminded, preview: remindedPreview } = planned(round([old], reminding));

    expect(rejected.connections[0]).toMatchObject({ purpose: 'time-out', change: { kind: 'act', claim: { outcome: 'reject', rule: 'pendingTimeout:reject' } } });
    expect(rejectedPreview.changes[0]).toMatchObject({ effect: 'reject', planned: { rule: 'pendingTimeout:reject' } });
    const change = reminded.connections[0]?.change;
    expect(change?.kind === 'record' && change.next.outbox?.map((e) => e.eventType)).toEqual(['approval-needed', 'approval-reminder']);
  });

  it('decides nothing at all for a service whose policy cannot be read', () => {
    const request = connection(ALLOWED, 'pendingAcceptance');
    const service = { ...round([request], undefined), policy: { kind: 'unreadable', policyId: SERVICE, version: 2, reason: 'invalid policy: mode' } as const };

    const { plan: plan, preview: planPreview } = planned(service);

    expect(plan.connections).toEqual([]);
    expect(plan.failures).toEqual([
      { serviceId: SERVICE, code: 'UnreadablePolicyError', message: 'invalid policy: mode' },
      { serviceId: SERVICE, endpointId: request.endpointId, code: 'UnreadablePolicyError', message: 'invalid policy: mode' },
    ]);
  });
});
