import type { Claim, ConnectionRecord, ConnectionState, Decision, HistoryEvent, ObservedConnection } from './connection';
import { claimIsLive, isAdmitted } from './connection';
import { withoutEvents } from './outbox';
import { eventFor, type OutboundEventType } from './outbound-event';
import type { Evaluation } from './policy';

/** Fresh values a plan needs, passed in so that planning stays pure. */
export interface PlanContext {
  now: Date;
  newId: () => string;
  leaseSeconds: number;
  /** Where the observation came from, for the history: "notification:Connect", "sweep", ... */
  source: string;
}

/**
 * What to do about one connection: write `next` (conditional on the version the
 * plan started from), then, for `act`, ask EC2 to carry out `claim`.
 */
export type Plan =
  | { kind: 'unchanged' }
  | { kind: 'record'; next: ConnectionRecord }
  | { kind: 'act'; next: ConnectionRecord; claim: Claim };

/** An action decided by someone or something: a policy rule, an approver, enforcement. */
export interface Intent {
  outcome: 'accept' | 'reject';
  rule: string;
  reason: string;
  /** 'policy', or the approver's principal. */
  decidedBy: string;
}

/** The states EC2 allows each action from. */
const ACTIONABLE: Record<Intent['outcome'], readonly ConnectionState[]> = {
  accept: ['pendingAcceptance'],
  reject: ['pendingAcceptance', 'pending', 'available'],
};

/**
 * Brings a record in line with what EC2 reports and decides what to do next.
 * `evaluation` is the policy's verdict, needed only while the connection is
 * pendingAcceptance.
 */
export function planConnection(
  record: ConnectionRecord | undefined,
  observed: ObservedConnection,
  evaluation: Evaluation | undefined,
  context: PlanContext,
): Plan {
  const at = context.now.toISOString();
  const synced = sync(record, observed, context);
  let next = synced.next;
  const { history, outbox } = synced;
  const emit = (type: OutboundEventType, recordNow: ConnectionRecord) =>
    outbox.push(eventFor(type, recordNow, { eventId: context.newId(), occurredAt: at }));

  if (observed.state === 'pendingAcceptance' && evaluation && !next.decision?.acted && !claimIsLive(next.claim, context.now)) {
    if (evaluation.act && evaluation.outcome !== 'hold') {
      const claim = newClaim({ ...evaluation, outcome: evaluation.outcome, decidedBy: 'policy' }, observed.state, context);
      return { kind: 'act', claim, next: finish({ ...next, claim }, history, outbox, at) };
    }
    const previous = next.decision;
    const decision: Decision = {
      outcome: evaluation.outcome,
      acted: false,
      rule: evaluation.rule,
      reason: evaluation.reason,
      decidedBy: 'policy',
      decidedAt: at,
    };
    if (!previous || previous.rule !== decision.rule || previous.outcome !== decision.outcome) {
      next = withDecision(next, decision, history, at);
      // Approvers hear about a connection once, when it first needs them.
      if (!previous) emit('approval-needed', next);
    }
  }

  if (!history.length && outbox.length === (record?.outbox?.length ?? 0) && record?.claim === next.claim) {
    return { kind: 'unchanged' };
  }
  return { kind: 'record', next: finish(next, history, outbox, at) };
}

/**
 * Claims a connection for an action decided outside the policy's verdict on a
 * pending request: an approver's accept or reject, or the revocation of a
 * consumer that is no longer allowed. Refuses, saying why, when EC2's state
 * does not allow the action or another action holds the connection.
 */
export function claimFor(
  record: ConnectionRecord | undefined,
  observed: ObservedConnection,
  intent: Intent,
  context: PlanContext,
): Extract<Plan, { kind: 'act' }> | { kind: 'refused'; why: string } {
  const { next, history, outbox } = sync(record, observed, context);
  if (!ACTIONABLE[intent.outcome].includes(observed.state)) {
    return { kind: 'refused', why: `connection ${observed.endpointId} is ${observed.state}, so it cannot be ${intent.outcome}ed` };
  }
  if (claimIsLive(next.claim, context.now)) {
    return { kind: 'refused', why: `another ${next.claim?.outcome} of connection ${observed.endpointId} is under way` };
  }
  const claim = newClaim(intent, observed.state, context);
  return { kind: 'act', claim, next: finish({ ...next, claim }, history, outbox, context.now.toISOString()) };
}

/**
 * The record brought in line with EC2's state: first sighting, state change,
 * and the completion of a claim whose action EC2 shows was carried out by an
 * invocation that did not live to record it.
 */
function sync(record: ConnectionRecord | undefined, observed: ObservedConnection, context: PlanContext, holding?: Claim) {
  const at = context.now.toISOString();
  // Someone else's action under way: EC2 may already show it, and its holder records that, in order.
  const othersUnderWay = (claim: Claim | undefined) => claimIsLive(claim, context.now) && claim?.token !== holding?.token;
  const history: HistoryEvent[] = [];
  let next: ConnectionRecord = record
    ? { ...record }
    : {
        serviceId: observed.serviceId,
        endpointId: observed.endpointId,
        ownerAccountId: observed.ownerAccountId,
        region: observed.region,
        state: observed.state,
        createdAt: observed.createdAt ?? at,
        updatedAt: at,
        version: 0,
        history: [],
      };
  if (!record) history.push({ at, type: 'first-seen', state: observed.state, source: context.source });
  else if (othersUnderWay(record.claim) && observed.state !== record.claim?.from) {
    // left to the claim's holder
  } else if (record.state !== observed.state) {
    history.push({ at, type: 'state-changed', from: record.state, to: observed.state, source: context.source });
    next.state = observed.state;
  }
  const outbox = [...(next.outbox ?? [])];
  // Only a claim whose lease ran out (its holder may have died), or our own, is finished here.
  if (next.claim?.status === 'acting' && observed.state !== next.claim.from && !othersUnderWay(next.claim)) {
    const { claim } = next;
    next.claim = undefined;
    if (claimCarriedOut(claim, observed.state)) {
      next = withDecision(next, decisionFrom(claim, at), history, at);
      outbox.push(eventFor(claim.outcome === 'accept' ? 'accepted' : 'rejected', next, { eventId: claim.outcomeEventId ?? context.newId(), occurredAt: at }));
    }
  }
  return { next, history, outbox };
}

function newClaim(intent: Intent, from: ConnectionState, context: PlanContext): Claim {
  return {
    outcome: intent.outcome,
    from,
    rule: intent.rule,
    reason: intent.reason,
    decidedBy: intent.decidedBy,
    token: context.newId(),
    leaseUntil: new Date(context.now.getTime() + context.leaseSeconds * 1000).toISOString(),
    status: 'acting',
    outcomeEventId: context.newId(),
  };
}

/**
 * The record after EC2 carried out a claim: the decision, the state EC2 moves
 * the connection to, and the event announcing it.
 */
export function completeClaim(record: ConnectionRecord, claim: Claim, context: PlanContext): ConnectionRecord {
  const at = context.now.toISOString();
  const history: HistoryEvent[] = [];
  const to: ConnectionState = claim.outcome === 'accept' ? 'pending' : 'rejected';
  let next: ConnectionRecord = { ...record, claim: undefined };
  next = withDecision(next, decisionFrom(claim, at), history, at);
  if (record.state !== to) {
    history.push({ at, type: 'state-changed', from: record.state, to, source: 'ec2-action' });
    next.state = to;
  }
  const event = eventFor(claim.outcome === 'accept' ? 'accepted' : 'rejected', next, {
    eventId: claim.outcomeEventId ?? context.newId(),
    occurredAt: at,
  });
  return finish(next, history, [...(record.outbox ?? []), event], at);
}

/** The record after EC2 refused or failed to act: the claim is released for a retry. */
export function failClaim(
  record: ConnectionRecord,
  claim: Claim,
  error: { code: string; message: string },
  context: PlanContext,
): ConnectionRecord {
  const at = context.now.toISOString();
  const next: ConnectionRecord = { ...record, claim: { ...claim, status: 'failed' } };
  const event = eventFor('action-failed', next, { eventId: context.newId(), occurredAt: at, error });
  const last = record.history.at(-1);
  if (last?.type === 'action-failed' && last.outcome === claim.outcome && last.code === error.code) {
    // The same failure again: counted in the entry it repeats, so that retries cannot grow the record without bound.
    const repeated: HistoryEvent = { ...last, at, message: error.message, times: (last.times ?? 1) + 1, firstAt: last.firstAt ?? last.at };
    return finish({ ...next, history: [...record.history.slice(0, -1), repeated] }, [], [...(record.outbox ?? []), event], at);
  }
  const history: HistoryEvent[] = [{ at, type: 'action-failed', outcome: claim.outcome, ...error }];
  return finish(next, history, [...(record.outbox ?? []), event], at);
}

/**
 * The record after approvers were reminded of a request still pending: the
 * reminder event, and when, so that the next one waits a whole timeout period.
 */
export function remindApprovers(record: ConnectionRecord, context: PlanContext): ConnectionRecord {
  const at = context.now.toISOString();
  const next: ConnectionRecord = { ...record, remindedAt: at };
  const event = eventFor('approval-reminder', next, { eventId: context.newId(), occurredAt: at });
  const last = record.history.at(-1);
  if (last?.type === 'reminded') {
    // Reminders repeat every period while a request waits: one entry counts them, so the record stays bounded.
    const repeated: HistoryEvent = { ...last, at, times: (last.times ?? 1) + 1, firstAt: last.firstAt ?? last.at };
    return finish({ ...next, history: [...record.history.slice(0, -1), repeated] }, [], [...(record.outbox ?? []), event], at);
  }
  return finish(next, [{ at, type: 'reminded', pendingSince: record.createdAt }], [...(record.outbox ?? []), event], at);
}

/** The record once some of its outbox has been published. */
export function withoutPublished(record: ConnectionRecord, publishedIds: ReadonlySet<string>, now: Date): ConnectionRecord {
  return { ...withoutEvents(record, publishedIds), updatedAt: now.toISOString(), version: record.version + 1 };
}

/**
 * The record after EC2 refused a claim's action because the connection had
 * already left the state the claim was taken in (`observed.state` differs from
 * `claim.from`): the claim goes, the state EC2 shows is recorded, and, when EC2
 * shows the claimed action carried out (by an earlier attempt), the decision.
 */
export function settledElsewhere(record: ConnectionRecord, claim: Claim, observed: ObservedConnection, context: PlanContext): ConnectionRecord {
  const { next, history, outbox } = sync({ ...record, claim: { ...claim, status: 'acting' } }, observed, { ...context, source: 'ec2-action' }, claim);
  return finish(next, history, outbox, context.now.toISOString());
}

/** What a write repaired, read from the history it added: first sightings, drift, decisions of claims whose holder died. */
export interface Repairs {
  firstSeen: number;
  stateChanged: number;
  recovered: number;
}

/** The repairs that the write from `before` to `after` made, as its new history entries say. */
export function repairsOf(before: ConnectionRecord | undefined, after: ConnectionRecord): Repairs {
  const added = after.history.slice(before?.history.length ?? 0);
  return {
    firstSeen: added.some((entry) => entry.type === 'first-seen') ? 1 : 0,
    stateChanged: added.some((entry) => entry.type === 'state-changed') ? 1 : 0,
    // Planning never decides an acted outcome itself (it claims): one in the history was found done in EC2.
    recovered: added.some((entry) => entry.type === 'decision' && entry.acted) ? 1 : 0,
  };
}

function claimCarriedOut(claim: Claim, state: ConnectionState): boolean {
  return claim.outcome === 'accept' ? isAdmitted(state) : state === 'rejected';
}

function decisionFrom(claim: Claim, at: string): Decision {
  return { outcome: claim.outcome, acted: true, rule: claim.rule, reason: claim.reason, decidedBy: claim.decidedBy, decidedAt: at };
}

function withDecision(record: ConnectionRecord, decision: Decision, history: HistoryEvent[], at: string): ConnectionRecord {
  const { decidedAt: _decidedAt, ...entry } = decision;
  history.push({ at, type: 'decision', ...entry });
  return { ...record, decision };
}

function finish(record: ConnectionRecord, history: HistoryEvent[], outbox: ConnectionRecord['outbox'] & object, at: string): ConnectionRecord {
  return {
    ...record,
    history: [...record.history, ...history],
    outbox: outbox.length ? outbox : undefined,
    updatedAt: at,
    version: record.version + 1,
  };
}
