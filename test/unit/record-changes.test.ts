import { describe, expect, it } from 'vitest';
import { claimIsLive, type ConnectionRecord, type ObservedConnection } from '../../lib/domain/connection';
import { eventsAddedBy, eventsToPublish } from '../../lib/domain/outbox';
import type { Evaluation } from '../../lib/domain/policy';
import {
  changeConnection,
  completeClaim,
  failClaim,
  repairsOf,
  settledElsewhere,
  withoutPublished,
  type Change,
  type ChangeContext,
} from '../../lib/domain/record-changes';

// Every change to a connection's record, without I/O.

const now = new Date('2026-11-23T12:00:00Z');
let ids = 0;
const context: ChangeContext = { now, newId: () => `id-${++ids}`, leaseSeconds: 45, source: 'notification:Connect' };
const pending: ObservedConnection = {
  serviceId: 'vpce-svc-0a1b2c3d4e5f60718',
  endpointId: 'vpce-0123456789abcdef0',
  ownerAccountId: '111122223333',
  region: 'us-east-1',
  state: 'pendingAcceptance',
};
const accept: Evaluation = { outcome: 'accept', act: true, rule: 'allow:acme', reason: 'matched acme' };
const hold: Evaluation = { outcome: 'hold', act: false, rule: 'onUnmatched:hold', reason: 'unknown account' };

function acting(change: Change): Extract<Change, { kind: 'act' }> {
  if (change.kind !== 'act') throw new Error(`expected a claim, got ${change.kind}`);
  return change;
}
function recorded(change: Change): ConnectionRecord {
  if (change.kind !== 'record') throw new Error(`expected a record, got ${change.kind}`);
  return change.next;
}
function claimedRecord(leaseUntil: string, status: 'acting' | 'failed' = 'acting'): ConnectionRecord {
  const { next, claim } = acting(changeConnection(undefined, pending, { evaluation: accept }, context));
  return { ...next, claim: { ...claim, leaseUntil, status } };
}
const published = (record: ConnectionRecord) => withoutPublished(record, new Set(record.outbox?.map((e) => e.eventId)), now);

describe('deciding a waiting request by the policy\'s verdict', () => {
  it('claims a new request the policy accepts, with a lease', () => {
    const { claim, next } = acting(changeConnection(undefined, pending, { evaluation: accept }, context));

    expect(claim).toMatchObject({ outcome: 'accept', rule: 'allow:acme', status: 'acting', leaseUntil: '2026-11-23T12:00:45.000Z' });
    expect(next).toMatchObject({ version: 1, state: 'pendingAcceptance', claim });
    expect(next.history).toEqual([{ at: now.toISOString(), type: 'first-seen', state: 'pendingAcceptance', source: 'notification:Connect' }]);
  });

  it('keeps its hands off a connection another invocation has claimed', () => {
    expect(changeConnection(claimedRecord('2026-11-23T12:00:30Z'), pending, { evaluation: accept }, context)).toEqual({ kind: 'unchanged' });
  });

  it('takes over a claim whose lease ran out, or whose action failed', () => {
    expect(changeConnection(claimedRecord('2026-11-23T11:59:00Z'), pending, { evaluation: accept }, context).kind).toBe('act');
    expect(changeConnection(claimedRecord('2026-11-23T12:00:30Z', 'failed'), pending, { evaluation: accept }, context).kind).toBe('act');
  });

  it('holds, and asks for approval only the first time', () => {
    const first = recorded(changeConnection(undefined, pending, { evaluation: hold }, context));
    expect(first.outbox?.map((e) => e.eventType)).toEqual(['approval-needed']);
    expect(changeConnection(published(first), pending, { evaluation: hold }, context)).toEqual({ kind: 'unchanged' });
  });

  it('acts on a held request once the policy allows it', () => {
    const held = recorded(changeConnection(undefined, pending, { evaluation: hold }, context));
    expect(changeConnection(held, pending, { evaluation: accept }, context).kind).toBe('act');
  });

  it('never acts again on a connection it already decided, even while EC2 still shows it waiting', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const decided = completeClaim(record, record.claim!, context);
    const change = changeConnection(decided, pending, { evaluation: accept }, context);
    expect(change.kind).not.toBe('act');
  });
});

describe('bringing a record in line with EC2', () => {
  it('records a decision EC2 shows was carried out by an invocation that died before recording it', () => {
    const next = recorded(changeConnection(claimedRecord('2026-11-23T11:59:00Z'), { ...pending, state: 'available' }, {}, context));

    expect(next.claim).toBeUndefined();
    expect(next.decision).toMatchObject({ outcome: 'accept', acted: true, rule: 'allow:acme' });
    expect(next.history.slice(1).map((e) => e.type)).toEqual(['state-changed', 'decision']);
    expect(next.outbox?.map((e) => e.eventType)).toEqual(['accepted']);
  });

  it('leaves a claim still under way to its holder, even when EC2 already shows its action', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    expect(changeConnection(record, { ...pending, state: 'pending' }, {}, context)).toEqual({ kind: 'unchanged' });
    expect(changeConnection(record, { ...pending, state: 'deleted' }, {}, context)).toEqual({ kind: 'unchanged' });
  });

  it('drops a claim that EC2 shows was overtaken by something else, deciding nothing', () => {
    const next = recorded(changeConnection(claimedRecord('2026-11-23T11:59:00Z'), { ...pending, state: 'deleted' }, {}, context));
    expect(next).toMatchObject({ state: 'deleted', claim: undefined });
    expect(next.decision).toBeUndefined();
  });

  it('never moves a record back to an earlier state: such an observation is older than the record', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const accepted = published(completeClaim(record, record.claim!, context));

    expect(accepted.state).toBe('pending');
    expect(changeConnection(accepted, pending, { evaluation: accept }, context)).toEqual({ kind: 'unchanged' });
    expect(recorded(changeConnection(accepted, { ...pending, state: 'available' }, {}, context)).state).toBe('available');
  });
});

describe('an action decided elsewhere (approver, revocation, timeout)', () => {
  const revoke = { intent: { outcome: 'reject' as const, rule: 'enforce:deny:x', reason: 'denied', decidedBy: 'policy' }, appliesTo: ['pending', 'available'] as const };

  it('claims an admitted connection for it', () => {
    const admitted = recorded(changeConnection(undefined, { ...pending, state: 'available' }, {}, context));
    const { claim } = acting(changeConnection(admitted, { ...pending, state: 'available' }, { action: revoke }, context));
    expect(claim).toMatchObject({ outcome: 'reject', from: 'available', rule: 'enforce:deny:x' });
  });

  it('refuses, saying why, when the state does not allow it or another action holds the connection', () => {
    expect(changeConnection(undefined, pending, { action: revoke }, context)).toMatchObject({ kind: 'record', refusal: { kind: 'state', state: 'pendingAcceptance' } });
    const held = claimedRecord('2026-11-23T12:00:30Z');
    const approverAccept = { intent: { outcome: 'accept' as const, rule: 'approver', reason: 'ok', decidedBy: 'alice' }, appliesTo: ['pendingAcceptance'] as const };
    expect(changeConnection(held, pending, { action: approverAccept }, context)).toMatchObject({ kind: 'unchanged', refusal: { kind: 'claimed' } });
  });
});

describe('claim endings', () => {
  it('completing a claim records the decision, the new state and the event', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const next = completeClaim(record, record.claim!, context);
    expect(next).toMatchObject({ state: 'pending', claim: undefined, version: record.version + 1, decision: { outcome: 'accept', acted: true } });
    expect(next.history.slice(-2).map((e) => e.type)).toEqual(['decision', 'state-changed']);
    expect(next.outbox?.map((e) => [e.eventType, e.eventId])).toEqual([['accepted', record.claim?.outcomeEventId]]);
  });

  it('failing a claim keeps it, marked failed, with the error in the history and an event', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const next = failClaim(record, record.claim!, { code: 'InternalError', message: 'boom' }, context);
    expect(next.claim?.status).toBe('failed');
    expect(claimIsLive(next.claim, now)).toBe(false);
    expect(next.history.at(-1)).toMatchObject({ type: 'action-failed', code: 'InternalError' });
    expect(next.outbox?.[0]).toMatchObject({ eventType: 'action-failed', error: { code: 'InternalError', message: 'boom' } });
  });

  it('records the decision under the claim\'s event id when EC2 refused because an earlier attempt had carried it out', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const next = settledElsewhere(record, record.claim!, { ...pending, state: 'available' }, context);
    expect(next).toMatchObject({ claim: undefined, state: 'available', decision: { outcome: 'accept', acted: true } });
    expect(next.outbox?.map((event) => [event.eventType, event.eventId])).toEqual([['accepted', record.claim?.outcomeEventId]]);
  });

  it('drops the claim without a decision when the connection went another way', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const next = settledElsewhere(record, record.claim!, { ...pending, state: 'deleted' }, context);
    expect(next).toMatchObject({ claim: undefined, state: 'deleted' });
    expect(next.decision).toBeUndefined();
    expect(next.history.at(-1)).toMatchObject({ type: 'state-changed', to: 'deleted', source: 'ec2-action' });
  });
});

describe('repairs', () => {
  it('counts a first sighting, a drifted state and a recovered claim from the history a write added', () => {
    const record = claimedRecord('2026-11-23T11:59:00Z');
    expect(repairsOf(undefined, record)).toEqual({ firstSeen: 1, stateChanged: 0, recovered: 0 });
    const next = recorded(changeConnection(record, { ...pending, state: 'available' }, {}, context));
    expect(repairsOf(record, next)).toEqual({ firstSeen: 0, stateChanged: 1, recovered: 1 });
  });
});

describe('the outbox', () => {
  const record = recorded(changeConnection(undefined, pending, { evaluation: hold }, context));
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

describe("the order of a connection's events", () => {
  it('numbers them 1, 2, 3, … in the order they happen, several in one write included', () => {
    const held = recorded(changeConnection(undefined, pending, { evaluation: hold, remind: true }, context));
    const claimedLater = acting(changeConnection(published(held), pending, { evaluation: accept }, context));
    const failed = failClaim(claimedLater.next, claimedLater.claim, { code: 'InternalError', message: 'x' }, context);
    const retried = acting(changeConnection(published(failed), pending, { evaluation: accept }, context));
    const accepted = completeClaim(retried.next, retried.claim, context);

    const sequences = [held, failed, accepted].flatMap((record) => record.outbox?.map((event) => [event.eventType, event.sequence]) ?? []);
    expect(sequences).toEqual([
      ['approval-needed', 1],
      ['approval-reminder', 2],
      ['action-failed', 3],
      ['accepted', 4],
    ]);
    expect(accepted.lastSequence).toBe(4);
  });

  it('continues after the version of a record written before events were counted', () => {
    const old: ConnectionRecord = { ...recorded(changeConnection(undefined, pending, {}, context)), version: 7, lastSequence: undefined };
    const next = recorded(changeConnection(old, pending, { evaluation: hold }, context));
    expect(next.outbox?.[0]?.sequence).toBe(8);
  });
});

describe('a bounded history', () => {
  it('counts 5,000 reminders (17 days every 5 minutes) in one entry, so the record stays small and readable', () => {
    let record = recorded(changeConnection(undefined, pending, { evaluation: hold }, context));
    for (let i = 1; i <= 5000; i++) {
      record = recorded(changeConnection({ ...record, outbox: undefined }, pending, { remind: true }, { ...context, now: new Date(now.getTime() + i * 300_000) }));
    }

    expect(record.history.map((e) => e.type)).toEqual(['first-seen', 'decision', 'reminded']);
    expect(record.history.at(-1)).toMatchObject({ times: 5000, firstAt: '2026-11-23T12:05:00.000Z' });
    expect(JSON.stringify(record).length).toBeLessThan(4_000);
  });

  it('counts the same failure repeated in one entry, and starts a new one when something else happened in between', () => {
    const record = claimedRecord('2026-11-23T12:00:30Z');
    const claim = record.claim!;
    const error = { code: 'InternalError', message: 'try again' };
    const twice = failClaim(failClaim(record, claim, error, context), claim, error, context);
    const other = failClaim(twice, claim, { code: 'InvalidState', message: 'x' }, context);

    expect(twice.history.filter((e) => e.type === 'action-failed')).toEqual([expect.objectContaining({ times: 2 })]);
    expect(other.history.filter((e) => e.type === 'action-failed')).toHaveLength(2);
  });
});
