import { describe, expect, it } from 'vitest';
import type { ConnectionRecord, ObservedConnection } from '../../lib/domain/connection';
import { completeClaim, failClaim, planConnection, withoutPublished, type PlanContext } from '../../lib/domain/decisions';
import type { Evaluation } from '../../lib/domain/policy';

const now = new Date('2026-11-23T12:00:00Z');
let ids = 0;
const context: PlanContext = { now, newId: () => `id-${++ids}`, leaseSeconds: 45, source: 'notification:Connect' };

const pending: ObservedConnection = {
  serviceId: 'vpce-svc-0a1b2c3d4e5f60718',
  endpointId: 'vpce-0123456789abcdef0',
  ownerAccountId: '111122223333',
  region: 'us-east-1',
  state: 'pendingAcceptance',
};
const accept: Evaluation = { outcome: 'accept', act: true, rule: 'allow:acme', reason: 'matched acme' };
const hold: Evaluation = { outcome: 'hold', act: false, rule: 'onUnmatched:hold', reason: 'unknown account' };

function claimedRecord(leaseUntil: string, status: 'acting' | 'failed' = 'acting'): ConnectionRecord {
  const plan = planConnection(undefined, pending, accept, context);
  if (plan.kind !== 'act') throw new Error('expected a claim');
  return { ...plan.next, claim: { ...plan.claim, leaseUntil, status } };
}

describe('planConnection', () => {
  it('claims a new pending connection the policy accepts, with a lease', () => {
    const plan = planConnection(undefined, pending, accept, context);

    expect(plan.kind).toBe('act');
    if (plan.kind !== 'act') return;
    expect(plan.claim).toMatchObject({ outcome: 'accept', rule: 'allow:acme', status: 'acting', leaseUntil: '2026-11-23T12:00:45.000Z' });
    expect(plan.next).toMatchObject({ version: 1, state: 'pendingAcceptance', claim: plan.claim });
    expect(plan.next.history).toEqual([{ at: now.toISOString(), type: 'first-seen', state: 'pendingAcceptance', source: 'notification:Connect' }]);
  });

  it('keeps its hands off a connection another invocation has claimed', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    expect(planConnection(record, pending, accept, context)).toEqual({ kind: 'unchanged' });
  });

  it('takes over a claim whose lease ran out, or whose action failed', () => {
    expect(planConnection(claimedRecord('2026-11-23T11:59:00Z'), pending, accept, context).kind).toBe('act');
    expect(planConnection(claimedRecord('2026-11-23T12:00:30Z', 'failed'), pending, accept, context).kind).toBe('act');
  });

  it('records a decision EC2 shows was carried out by an invocation that died before recording it', () => {
    const record = claimedRecord('2026-11-23T11:59:00Z');
    const plan = planConnection(record, { ...pending, state: 'available' }, undefined, context);

    expect(plan.kind).toBe('record');
    if (plan.kind !== 'record') return;
    expect(plan.next.claim).toBeUndefined();
    expect(plan.next.decision).toMatchObject({ outcome: 'accept', acted: true, rule: 'allow:acme' });
    expect(plan.next.history.slice(1).map((e) => e.type)).toEqual(['state-changed', 'decision']);
    expect(plan.next.outbox?.map((e) => e.eventType)).toEqual(['accepted']);
  });

  it('leaves a claim still under way to its holder, even when EC2 already shows its action', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    expect(planConnection(record, { ...pending, state: 'pending' }, undefined, context)).toEqual({ kind: 'unchanged' });
    expect(planConnection(record, { ...pending, state: 'deleted' }, undefined, context)).toEqual({ kind: 'unchanged' });
  });

  it('drops a claim that EC2 shows was overtaken by something else, deciding nothing', () => {
    const plan = planConnection(claimedRecord('2026-11-23T11:59:00Z'), { ...pending, state: 'deleted' }, undefined, context);
    if (plan.kind !== 'record') throw new Error('expected a record');
    expect(plan.next.state).toBe('deleted');
    expect(plan.next.claim).toBeUndefined();
    expect(plan.next.decision).toBeUndefined();
  });

  it('holds, and asks for approval only the first time', () => {
    const first = planConnection(undefined, pending, hold, context);
    expect(first.kind === 'record' && first.next.outbox?.map((e) => e.eventType)).toEqual(['approval-needed']);
    if (first.kind !== 'record') return;

    const published = withoutPublished(first.next, new Set(first.next.outbox?.map((e) => e.eventId)), now);
    expect(planConnection(published, pending, hold, context)).toEqual({ kind: 'unchanged' });
  });

  it('acts on a held connection once the policy allows it', () => {
    const held = planConnection(undefined, pending, hold, context);
    if (held.kind !== 'record') throw new Error('expected a hold');
    expect(planConnection(held.next, pending, accept, context).kind).toBe('act');
  });

  it('never acts again on a connection it already decided', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const decided = completeClaim(record, record.claim!, context);
    // EC2 still (briefly) reports pendingAcceptance: no second claim
    const planned = planConnection(decided, pending, accept, context);
    expect(planned.kind).toBe('record');
    if (planned.kind !== 'record') return;
    expect(planned.next.decision).toEqual(decided.decision);
    expect(planned.next.claim).toBeUndefined();
  });
});

describe('claim endings', () => {
  it('completing a claim records the decision, the new state and the event', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const next = completeClaim(record, record.claim!, context);
    expect(next).toMatchObject({ state: 'pending', claim: undefined, version: record.version + 1, decision: { outcome: 'accept', acted: true } });
    expect(next.history.slice(-2).map((e) => e.type)).toEqual(['decision', 'state-changed']);
    expect(next.outbox?.map((e) => e.eventType)).toEqual(['accepted']);
  });

  it('failing a claim keeps it, marked failed, with the error in the history and an event', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const next = failClaim(record, record.claim!, { code: 'InternalError', message: 'boom' }, context);
    expect(next.claim?.status).toBe('failed');
    expect(next.history.at(-1)).toMatchObject({ type: 'action-failed', code: 'InternalError' });
    expect(next.outbox?.[0]).toMatchObject({ eventType: 'action-failed', error: { code: 'InternalError', message: 'boom' } });
  });
});
