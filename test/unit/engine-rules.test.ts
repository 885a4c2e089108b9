import { describe, expect, it } from 'vitest';
import { claimIsLive, type Claim, type ConnectionRecord, type ObservedConnection } from '../../lib/domain/connection';
import { completeClaim, failClaim, planConnection, remindApprovers, repairsOf, settledElsewhere, withoutPublished, type PlanContext } from '../../lib/domain/decisions';
import { eventsAddedBy, eventsToPublish } from '../../lib/domain/outbox';
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

function claimed(): { record: ConnectionRecord; claim: Claim } {
  const plan = planConnection(undefined, pending, accept, context);
  if (plan.kind !== 'act') throw new Error('expected a claim');
  return { record: plan.next, claim: plan.claim };
}

describe('claim liveness', () => {
  const claim = claimed().claim;
  it('holds while acting within the lease, and not after it or once failed', () => {
    expect(claimIsLive(claim, now)).toBe(true);
    expect(claimIsLive(claim, new Date('2026-11-23T12:00:46Z'))).toBe(false);
    expect(claimIsLive({ ...claim, status: 'failed' }, now)).toBe(false);
    expect(claimIsLive(undefined, now)).toBe(false);
  });
});

describe('settledElsewhere', () => {
  it('records the decision when EC2 shows the claimed accept carried out, under the claim\'s event id', () => {
    const { record, claim } = claimed();
    const next = settledElsewhere(record, claim, { ...pending, state: 'available' }, context);
    expect(next.claim).toBeUndefined();
    expect(next.state).toBe('available');
    expect(next.decision).toMatchObject({ outcome: 'accept', acted: true });
    expect(next.outbox?.map((event) => [event.eventType, event.eventId])).toEqual([['accepted', claim.outcomeEventId]]);
    expect(next.version).toBe(record.version + 1);
  });

  it('drops the claim without a decision when the connection went another way', () => {
    const { record, claim } = claimed();
    const next = settledElsewhere(record, claim, { ...pending, state: 'deleted' }, context);
    expect(next.claim).toBeUndefined();
    expect(next.state).toBe('deleted');
    expect(next.decision).toBeUndefined();
    expect(next.history.at(-1)).toMatchObject({ type: 'state-changed', to: 'deleted', source: 'ec2-action' });
  });
});

describe('repairsOf', () => {
  it('counts a first sighting, a drifted state and a recovered claim from the history a write added', () => {
    const { record } = claimed();
    expect(repairsOf(undefined, record)).toEqual({ firstSeen: 1, stateChanged: 0, recovered: 0 });
    const later = new Date('2026-11-23T12:01:00Z');
    const plan = planConnection(record, { ...pending, state: 'available' }, undefined, { ...context, now: later });
    if (plan.kind !== 'record') throw new Error('expected a record');
    expect(repairsOf(record, plan.next)).toEqual({ firstSeen: 0, stateChanged: 1, recovered: 1 });
  });

  it('counts nothing for a write that only held a connection', () => {
    const first = planConnection(undefined, pending, { outcome: 'hold', act: false, rule: 'r', reason: 'x' }, context);
    if (first.kind !== 'record') throw new Error('expected a record');
    const again = planConnection(first.next, pending, { outcome: 'hold', act: false, rule: 'other', reason: 'y' }, context);
    if (again.kind !== 'record') throw new Error('expected a record');
    expect(repairsOf(first.next, again.next)).toEqual({ firstSeen: 0, stateChanged: 0, recovered: 0 });
  });
});

describe('the outbox', () => {
  const held = planConnection(undefined, pending, { outcome: 'hold', act: false, rule: 'r', reason: 'x' }, context);
  if (held.kind !== 'record') throw new Error('expected a record');
  const record = held.next;
  const [event] = record.outbox ?? [];

  it('publishes what a write added, and leaves older events to their writer while its lease runs', () => {
    expect(eventsAddedBy(record, undefined).map((e) => e.eventType)).toEqual(['approval-needed']);
    expect(eventsToPublish(record, undefined, now, 45)).toHaveLength(1);
    expect(eventsToPublish(record, record, new Date('2026-11-23T12:00:30Z'), 45)).toEqual([]);
  });

  it('publishes an event abandoned for longer than a lease, whoever writes next', () => {
    expect(eventsToPublish(record, record, new Date('2026-11-23T12:00:46Z'), 45).map((e) => e.eventId)).toEqual([event?.eventId]);
  });

  it('takes published events out with a new version', () => {
    const next = withoutPublished(record, new Set([event?.eventId ?? '']), now);
    expect(next.outbox).toBeUndefined();
    expect(next.version).toBe(record.version + 1);
  });
});

describe('the order of a connection\'s events', () => {
  it('numbers each event with the version of the write that recorded it, so a later event always has a larger number', () => {
    const hold: Evaluation = { outcome: 'hold', act: false, rule: 'onUnmatched:hold', reason: 'unknown account' };
    const held = planConnection(undefined, pending, hold, context);
    if (held.kind !== 'record') throw new Error('expected a record');
    const claimedLater = planConnection(withoutPublished(held.next, new Set(held.next.outbox?.map((e) => e.eventId)), now), pending, accept, context);
    if (claimedLater.kind !== 'act') throw new Error('expected a claim');
    const accepted = completeClaim(claimedLater.next, claimedLater.claim, context);
    const rejectedAfter = failClaim(accepted, { ...claimedLater.claim, outcome: 'reject' }, { code: 'InvalidState', message: 'x' }, context);

    const sequences = [held.next, accepted, rejectedAfter].map((record) => record.outbox?.at(-1)?.sequence);
    expect(sequences).toEqual([held.next.version, accepted.version, rejectedAfter.version]);
    expect(sequences).toEqual([...sequences].sort((a, b) => (a ?? 0) - (b ?? 0)));
  });
});

describe('a bounded history', () => {
  const hold: Evaluation = { outcome: 'hold', act: false, rule: 'onUnmatched:hold', reason: 'unknown account' };

  it('counts 5,000 reminders (17 days every 5 minutes) in one entry, so the record stays small and readable', () => {
    const held = planConnection(undefined, pending, hold, context);
    if (held.kind !== 'record') throw new Error('expected a record');
    let record = held.next;
    for (let i = 1; i <= 5000; i++) record = remindApprovers({ ...record, outbox: undefined }, { ...context, now: new Date(now.getTime() + i * 300_000) });

    expect(record.history.map((e) => e.type)).toEqual(['first-seen', 'decision', 'reminded']);
    expect(record.history.at(-1)).toMatchObject({ times: 5000, firstAt: '2026-11-23T12:05:00.000Z' });
    expect(JSON.stringify(record).length).toBeLessThan(4_000);
  });

  it('counts the same failure repeated in one entry, and starts a new one when something else happened in between', () => {
    const { record, claim } = claimed();
    const error = { code: 'InternalError', message: 'try again' };
    const twice = failClaim(failClaim(record, claim, error, context), claim, error, context);
    const other = failClaim(twice, claim, { code: 'InvalidState', message: 'x' }, context);

    expect(twice.history.filter((e) => e.type === 'action-failed')).toEqual([expect.objectContaining({ times: 2 })]);
    expect(other.history.filter((e) => e.type === 'action-failed')).toHaveLength(2);
  });
});
