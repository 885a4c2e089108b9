import { canFollow, claimIsLive, isAdmitted, type Claim, type ConnectionRecord, type ConnectionState, type Decision, type HistoryEvent, type ObservedConnection } from './connection';
import type { OutboundEvent, OutboundEventType } from './outbound-event';
import type { Evaluation } from './policy';

/**
 * Every change to a connection's record, pure: bringing it in line with what
 * EC2 shows, claiming it for an action, recording how the action ended,
 * reminding approvers. Each returns the next version of the record, with its
 * new history entries and the events it announces (in its outbox).
 */

/** Fresh values a change needs, passed in so that it stays pure. */
export interface ChangeContext {
  now: Date;
  newId: () => string;
  leaseSeconds: number;
  /** Where the observation came from, for the history: "notification:Connect", "reconciled", "api", ... */
  source: string;
}

/** An action decided on a connection: by a policy rule, an approver, enforcement or a pending timeout. */
export interface ActionIntent {
  outcome: 'accept' | 'reject';
  rule: string;
  reason: string;
  /** 'policy', or the approver's principal. */
  decidedBy: string;
}

/** What is wanted of one connection, besides bringing its record in line with EC2. */
export interface Want {
  /** The policy's verdict on a request waiting for one: decided while nothing has acted on it and no one holds it. */
  evaluation?: Evaluation;
  /** An action decided outside that verdict (an approver, enforcement, a timeout), and the states it applies to. */
  action?: { intent: ActionIntent; appliesTo: readonly ConnectionState[] };
  /** Remind approvers of a request still waiting (the policy's pendingTimeout). */
  remind?: boolean;
}

/** Why a wanted action was not taken. */
export type Refusal = { kind: 'state'; state: ConnectionState } | { kind: 'claimed'; claim: Claim };

/**
 * What to do about one connection: write `next` (conditional on the version it
 * started from), and for `act`, then ask EC2 to carry out `claim`.
 */
export type Change =
  | { kind: 'unchanged'; refusal?: Refusal }
  | { kind: 'record'; next: ConnectionRecord; refusal?: Refusal }
  /** `by`: whether the policy's verdict or the wanted action claimed it. */
  | { kind: 'act'; next: ConnectionRecord; claim: Claim; by: 'verdict' | 'action' };

/** An event before the write that stores it gives it its sequence (unless its claim reserved one). */
type DraftEvent = Omit<OutboundEvent, 'sequence'> & { sequence?: number };

/**
 * Brings a record in line with what EC2 reports, then does what is wanted:
 * decides a waiting request by the policy's verdict (claiming it when the
 * verdict acts, recording a hold otherwise), claims it for an action decided
 * elsewhere, or reminds approvers. A connection someone else holds under a live
 * claim is left to them.
 */
export function changeConnection(
  record: ConnectionRecord | undefined,
  observed: ObservedConnection,
  want: Want,
  context: ChangeContext,
): Change {
  const at = context.now.toISOString();
  const synced = inLineWithEc2(record, observed, context);
  let next = synced.next;
  const { history, events } = synced;
  const free = !claimIsLive(next.claim, context.now);

  const { evaluation } = want;
  if (evaluation && next.state === 'pendingAcceptance' && !next.decision?.acted && free) {
    if (evaluation.act && evaluation.outcome !== 'hold') {
      return claiming(next, newClaim({ ...evaluation, outcome: evaluation.outcome, decidedBy: 'policy' }, next.state, context), history, events, at, 'verdict');
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
      if (!previous) events.push(draftEvent('approval-needed', next, { eventId: context.newId(), occurredAt: at }));
    }
  }

  let refusal: Refusal | undefined;
  if (want.action) {
    if (!want.action.appliesTo.includes(next.state)) refusal = { kind: 'state', state: next.state };
    else if (!free && next.claim) refusal = { kind: 'claimed', claim: next.claim };
    else {
      return claiming(next, newClaim(want.action.intent, next.state, context), history, events, at, 'action');
    }
  }

  if (want.remind && next.state === 'pendingAcceptance' && free) {
    next = { ...next, remindedAt: at };
    events.push(draftEvent('approval-reminder', next, { eventId: context.newId(), occurredAt: at }));
    const last = next.history.at(-1);
    if (!history.length && last?.type === 'reminded') {
      // Reminders repeat every period while a request waits: one entry counts them, so the record stays bounded.
      next = { ...next, history: [...next.history.slice(0, -1), { ...last, at, times: (last.times ?? 1) + 1, firstAt: last.firstAt ?? last.at }] };
    } else history.push({ at, type: 'reminded', pendingSince: next.createdAt });
  }

  if (!history.length && !events.length && next === synced.unchangedFrom) return { kind: 'unchanged', ...(refusal ? { refusal } : {}) };
  return { kind: 'record', next: finish(next, history, events, at), ...(refusal ? { refusal } : {}) };
}

/** The decision a record holds once brought in line with EC2 (an abandoned claim EC2 shows carried out counts). */
export function decisionInLineWithEc2(record: ConnectionRecord | undefined, observed: ObservedConnection, now: Date): Decision | undefined {
  const claim = record?.claim;
  if (claim?.status === 'acting' && !claimIsLive(claim, now) && claimEnded(claim, observed.state) && claimCarriedOut(claim, observed.state)) {
    return decisionFrom(claim, now.toISOString());
  }
  return record?.decision;
}

/**
 * The record brought in line with EC2's state: first sighting, state change,
 * and the completion of a claim whose action EC2 shows was carried out by an
 * invocation that did not live to record it. A state EC2 cannot have moved to
 * from the recorded one is an observation older than the record: ignored.
 */
function inLineWithEc2(record: ConnectionRecord | undefined, observed: ObservedConnection, context: ChangeContext, holding?: Claim) {
  const at = context.now.toISOString();
  // Someone else's action under way: EC2 may already show it, and its holder records that, in order.
  const othersUnderWay = (claim: Claim | undefined) => claimIsLive(claim, context.now) && claim?.token !== holding?.token;
  const history: HistoryEvent[] = [];
  const events: DraftEvent[] = [];
  const unchangedFrom = record ?? undefined;
  let next: ConnectionRecord = record ?? {
    serviceId: observed.serviceId,
    endpointId: observed.endpointId,
    ownerAccountId: observed.ownerAccountId,
    region: observed.region,
    ...locationOf(observed),
    state: observed.state,
    createdAt: observed.createdAt ?? at,
    updatedAt: at,
    version: 0,
    history: [],
  };
  // A record written before the fleet learns where its service lives when EC2 next shows it.
  if (record && record.providerAccountId === undefined && observed.providerAccountId !== undefined) next = { ...next, ...locationOf(observed) };
  if (!record) history.push({ at, type: 'first-seen', state: observed.state, source: context.source });
  else if (othersUnderWay(record.claim) && observed.state !== record.claim?.from) {
    // left to the claim's holder
  } else if (record.state !== observed.state && canFollow(record.state, observed.state)) {
    history.push({ at, type: 'state-changed', from: record.state, to: observed.state, source: context.source });
    next = { ...next, state: observed.state };
  }
  // Only a claim whose lease ran out (its holder may have died), or our own, is finished here.
  const claim = next.claim;
  if (claim?.status === 'acting' && claimEnded(claim, observed.state) && !othersUnderWay(claim)) {
    next = { ...next, claim: undefined };
    if (claimCarriedOut(claim, observed.state)) {
      next = withDecision(next, decisionFrom(claim, at), history, at);
      events.push(outcomeEvent(claim, next, context, at));
    }
  }
  return { next, history, events, unchangedFrom };
}

/** The claim's write: the record's new history and events, and the next sequence number reserved for the claim's outcome. */
function claiming(
  record: ConnectionRecord,
  claim: Claim,
  history: HistoryEvent[],
  events: DraftEvent[],
  at: string,
  by: 'verdict' | 'action',
): Extract<Change, { kind: 'act' }> {
  const written = finish(record, history, events, at);
  const outcomeSequence = (written.lastSequence ?? 0) + 1;
  const reserved = { ...claim, outcomeSequence };
  return { kind: 'act', by, claim: reserved, next: { ...written, claim: reserved, lastSequence: outcomeSequence } };
}

function newClaim(intent: ActionIntent, from: ConnectionState, context: ChangeContext): Claim {
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
export function completeClaim(record: ConnectionRecord, claim: Claim, context: ChangeContext): ConnectionRecord {
  const at = context.now.toISOString();
  const history: HistoryEvent[] = [];
  const to: ConnectionState = claim.outcome === 'accept' ? 'pending' : 'rejected';
  let next: ConnectionRecord = withDecision({ ...record, claim: undefined }, decisionFrom(claim, at), history, at);
  if (record.state !== to && canFollow(record.state, to)) {
    history.push({ at, type: 'state-changed', from: record.state, to, source: 'ec2-action' });
    next = { ...next, state: to };
  }
  return finish(next, history, [outcomeEvent(claim, next, context, at)], at);
}

/** The record after EC2 refused or failed to act: the claim is released for a retry. */
export function failClaim(record: ConnectionRecord, claim: Claim, error: { code: string; message: string }, context: ChangeContext): ConnectionRecord {
  const at = context.now.toISOString();
  const next: ConnectionRecord = { ...record, claim: { ...claim, status: 'failed' } };
  // The failure is the claim's outcome: it takes the sequence the claim reserved.
  const event = { ...draftEvent('action-failed', next, { eventId: context.newId(), occurredAt: at, error }), ...(claim.outcomeSequence ? { sequence: claim.outcomeSequence } : {}) };
  const last = record.history.at(-1);
  if (last?.type === 'action-failed' && last.outcome === claim.outcome && last.code === error.code) {
    // The same failure again: counted in the entry it repeats, so that retries cannot grow the record without bound.
    const repeated: HistoryEvent = { ...last, at, message: error.message, times: (last.times ?? 1) + 1, firstAt: last.firstAt ?? last.at };
    return finish({ ...next, history: [...record.history.slice(0, -1), repeated] }, [], [event], at);
  }
  return finish(next, [{ at, type: 'action-failed', outcome: claim.outcome, ...error }], [event], at);
}

/**
 * The record after EC2 refused a claim's action because the connection had
 * already left the state the claim was taken in (`observed.state` differs from
 * `claim.from`): the claim goes, the state EC2 shows is recorded, and, when EC2
 * shows the claimed action carried out (by an earlier attempt), the decision.
 */
export function settledElsewhere(record: ConnectionRecord, claim: Claim, observed: ObservedConnection, context: ChangeContext): ConnectionRecord {
  const { next, history, events } = inLineWithEc2({ ...record, claim: { ...claim, status: 'acting' } }, observed, { ...context, source: 'ec2-action' }, claim);
  return finish(next, history, events, context.now.toISOString());
}

/** The record once some of its outbox has been published (no event of its own). */
export function withoutPublished(record: ConnectionRecord, publishedIds: ReadonlySet<string>, now: Date): ConnectionRecord {
  const outbox = (record.outbox ?? []).filter((event) => !publishedIds.has(event.eventId));
  return {
    ...record,
    outbox: outbox.length ? outbox : undefined,
    lastSequence: record.lastSequence ?? record.version,
    updatedAt: now.toISOString(),
    version: record.version + 1,
  };
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
    // Changing a connection never decides an acted outcome itself (it claims): one in the history was found done in EC2.
    recovered: added.some((entry) => entry.type === 'decision' && entry.acted) ? 1 : 0,
  };
}

/** Whether EC2's state shows the claim's action over: the connection moved on from where the claim found it. */
function claimEnded(claim: Claim, state: ConnectionState): boolean {
  return state !== claim.from && canFollow(claim.from, state);
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

/** The accepted or rejected event a carried-out claim ends in: under the id and the sequence fixed when it was taken. */
function outcomeEvent(claim: Claim, record: ConnectionRecord, context: ChangeContext, at: string): DraftEvent {
  const event = draftEvent(claim.outcome === 'accept' ? 'accepted' : 'rejected', record, { eventId: claim.outcomeEventId ?? context.newId(), occurredAt: at });
  return claim.outcomeSequence ? { ...event, sequence: claim.outcomeSequence } : event;
}

/** An event about a connection's record as it stands (its state and decision). */
function draftEvent(
  eventType: OutboundEventType,
  record: ConnectionRecord,
  details: { eventId: string; occurredAt: string; error?: { code: string; message: string } },
): DraftEvent {
  const path = `/services/${record.serviceId}/connections/${record.endpointId}`;
  return {
    eventId: details.eventId,
    eventType,
    occurredAt: details.occurredAt,
    serviceId: record.serviceId,
    endpointId: record.endpointId,
    ownerAccountId: record.ownerAccountId,
    region: record.region,
    ...locationOf(record),
    state: record.state,
    decision: record.decision,
    ...(eventType === 'approval-needed' || eventType === 'approval-reminder' ? { actions: { accept: `${path}/accept`, reject: `${path}/reject` } } : {}),
    ...(details.error ? { error: details.error } : {}),
  };
}

/**
 * The next version of a record: its new history entries, and its new events in
 * the outbox, each numbered one more than the connection's event before it (a
 * claim's outcome keeps the number the claim reserved).
 */
function finish(record: ConnectionRecord, history: HistoryEvent[], events: DraftEvent[], at: string): ConnectionRecord {
  let sequence = record.lastSequence ?? record.version;
  const stamped: OutboundEvent[] = events.map((event) => {
    if (event.sequence !== undefined) {
      sequence = Math.max(sequence, event.sequence);
      return { ...event, sequence: event.sequence };
    }
    return { ...event, sequence: ++sequence };
  });
  const outbox = [...(record.outbox ?? []), ...stamped];
  return {
    ...record,
    history: [...record.history, ...history],
    outbox: outbox.length ? outbox : undefined,
    lastSequence: sequence,
    updatedAt: at,
    version: record.version + 1,
  };
}

/** Where a connection's service lives, when known. */
function locationOf({ providerAccountId, serviceRegion }: Pick<ConnectionRecord, 'providerAccountId' | 'serviceRegion'>): Pick<ConnectionRecord, 'providerAccountId' | 'serviceRegion'> {
  return providerAccountId === undefined || serviceRegion === undefined ? {} : { providerAccountId, serviceRegion };
}
