import { describe, expect, it } from 'vitest';
import type { ConnectionRecord, ObservedConnection } from '../../lib/domain/connection';
import { planService, summarize } from '../../lib/domain/plan';
import { parsePolicy } from '../../lib/domain/policy';

// The plan's rules without I/O: what a reconcile run would do under a candidate policy.

const NOW = new Date('2026-11-23T12:00:00Z');
const SERVICE = 'vpce-svc-0123456789abcdef0';
let next = 0;

function connection(ownerAccountId: string, state: ObservedConnection['state']): ObservedConnection {
  next++;
  return { serviceId: SERVICE, endpointId: `vpce-${String(next).padStart(17, '0')}`, ownerAccountId, region: 'us-east-1', state };
}

function admittedByPolicy(c: ObservedConnection): [string, ConnectionRecord] {
  const decision = { outcome: 'accept' as const, acted: true, rule: 'allow:x', reason: 'r', decidedBy: 'policy', decidedAt: NOW.toISOString() };
  return [c.endpointId, { ...c, decision, createdAt: NOW.toISOString(), updatedAt: NOW.toISOString(), version: 1, history: [] }];
}

describe('planning a candidate policy for one service', () => {
  it('counts the accepts it plans against maxEndpointsPerAccount, as a run reserves them', () => {
    const requests = [connection('111122223333', 'pendingAcceptance'), connection('111122223333', 'pendingAcceptance'), connection('111122223333', 'pendingAcceptance')];
    const candidate = parsePolicy({ allow: [{ account: '111122223333' }], maxEndpointsPerAccount: 2 });

    const plan = planService({ serviceId: SERVICE, connections: [connection('111122223333', 'available'), ...requests], records: new Map() }, undefined, candidate, NOW);

    expect(plan.changes.map((c) => c.effect)).toEqual(['accept', 'hold', 'hold']);
    expect(plan.changes[1]?.planned.reason).toContain('already has 2 endpoint(s) admitted');
    expect(plan.changes[0]?.current).toEqual({ outcome: 'hold', rule: 'no-policy' });
  });

  it('never revokes what an approver accepted by hand when the account is merely no longer allowed, but revokes a denied account', () => {
    const byHand = connection('111122223333', 'available');
    const denied = connection('444455556666', 'available');
    const records = new Map([admittedByPolicy(denied)]);
    const candidate = parsePolicy({ deny: [{ account: '444455556666' }], enforce: true, maxRevocationPercent: 100 });

    const plan = planService({ serviceId: SERVICE, connections: [byHand, denied], records }, undefined, candidate, NOW);

    expect(plan.changes.map((c) => [c.endpointId, c.effect])).toEqual([[denied.endpointId, 'revoke']]);
    expect(plan.unchanged).toBe(1);
  });

  it('revokes nothing when the candidate does not act (observe mode), even with enforce', () => {
    const admitted = connection('111122223333', 'available');
    const candidate = parsePolicy({ mode: 'observe', enforce: true, maxRevocationPercent: 100 });

    const plan = planService({ serviceId: SERVICE, connections: [admitted], records: new Map([admittedByPolicy(admitted)]) }, undefined, candidate, NOW);

    expect(summarize([plan])).toEqual({ accept: 0, reject: 0, revoke: 0, hold: 0, unchanged: 1 });
  });

  it('counts the requests it would accept among the admitted connections the safety limit is a share of', () => {
    // 1 revocation of 1 admitted is 100%; with 9 requests accepted first, it is 10%: within the default limit.
    const leaving = connection('444455556666', 'available');
    const arriving = Array.from({ length: 9 }, () => connection('111122223333', 'pendingAcceptance'));
    const candidate = parsePolicy({ allow: [{ account: '111122223333' }], deny: [{ account: '444455556666' }], enforce: true });

    const plan = planService({ serviceId: SERVICE, connections: [leaving, ...arriving], records: new Map() }, undefined, candidate, NOW);

    expect(summarize([plan])).toMatchObject({ accept: 9, revoke: 1 });
    expect(plan.revocationLimit).toBeUndefined();
  });

  it('leaves a request with an action under way to its holder', () => {
    const request = connection('111122223333', 'pendingAcceptance');
    const [, record] = admittedByPolicy(request);
    const claimed: ConnectionRecord = {
      ...record,
      decision: undefined,
      claim: { outcome: 'accept', from: 'pendingAcceptance', rule: 'approver', reason: 'r', decidedBy: 'alice', token: 't', leaseUntil: new Date(NOW.getTime() + 30_000).toISOString(), status: 'acting' },
    };
    const candidate = parsePolicy({ onUnmatched: 'reject' });

    const plan = planService({ serviceId: SERVICE, connections: [request], records: new Map([[request.endpointId, claimed]]) }, undefined, candidate, NOW);

    expect(plan.changes[0]).toMatchObject({ effect: 'hold', planned: { rule: 'in-progress' } });
  });
});
