import type { Claim, ConnectionRecord, ConnectionState, ObservedConnection } from '../domain/connection';
import type { RevocationLimitEvent } from '../domain/outbound-event';
import { planService, replanConnection, type PlanContext, type PlannedConnection, type Purpose, type RevocationLimitReached, type ServicePlan } from '../domain/plan';
import type { PolicyInForce } from '../domain/policy';
import { completeClaim, failClaim, repairsOf, settledElsewhere, type Change, type Refusal } from '../domain/record-changes';
import type { AccountPlaces, ScopedFailure, ServiceSnapshot, Snapshot } from '../domain/snapshot';
import { ConflictError, describeError, type Failure } from '../errors';
import { forEachSettled } from '../concurrency';
import { logger } from '../logger';
import { EC2_ACTION_BATCH_SIZE, type Ec2Connections, type EnginePorts } from './ports';
import { inHalves } from './in-halves';
import { connectionItem, publishAhead, publishOutbox } from './publish';
import { writeVersioned, type ConflictPolicy } from './versioned-write';

/**
 * Carries out a service's plan: the admission places first, then each
 * connection's change (a conditional write; a lost race plans that connection
 * again from the latest record, as the caller's conflict policy allows), then
 * EC2's Accept and Reject calls in batches, then the outcome of each in its
 * record, then the events (through the records' outbox), then the counts by
 * state of what changed, in one write. What failed is returned, never thrown
 * past the rest.
 */

/** Lost races tolerated while taking one of an account's places under maxEndpointsPerAccount. */
const PLACE_ATTEMPTS = 8;
/** Lost races tolerated while recording how a claim ended (only while the claim is still ours). */
const FINISH_ATTEMPTS = 5;
/**
 * Connections written at the same time. A sweep of thousands of connections is
 * bound by table round trips; each connection's writes stay in order, and
 * different connections do not touch each other.
 */
const WRITE_CONCURRENCY = 16;

/** What a run did to one service. */
export interface Counts {
  /** Connections EC2 showed in the run's scope. */
  observed: number;
  accepted: number;
  rejected: number;
  /** Admitted connections rejected because the policy no longer admits them. */
  revoked: number;
  /** Requests rejected because they waited longer than the policy's pendingTimeout. */
  timedOut: number;
  reminded: number;
  /** Connections that could not be decided: an action EC2 refused or failed, a read or write that failed. */
  failed: number;
  /** Records written for connections the table had never seen. */
  firstSeen: number;
  /** Records whose state EC2 reported changed (drift, when nothing announced it). */
  stateChanged: number;
  /** Claims of invocations that died, found carried out in EC2 and recorded without a second call. */
  recovered: number;
  /** Requests still waiting once the run was done. */
  pending: number;
}

export function noCounts(): Counts {
  return { observed: 0, accepted: 0, rejected: 0, revoked: 0, timedOut: 0, reminded: 0, failed: 0, firstSeen: 0, stateChanged: 0, recovered: 0, pending: 0 };
}

/** How an approver's decision ended. */
export type ApprovalOutcome =
  | { kind: 'done'; record: ConnectionRecord }
  /** EC2 refused the action: the connection was decided elsewhere, and now shows `state`. */
  | { kind: 'elsewhere'; state: ConnectionState; record?: ConnectionRecord }
  | { kind: 'failed'; failure: Failure }
  /** The action does not apply to the connection's state, or another action holds it. */
  | { kind: 'refused'; refusal: Refusal; record?: ConnectionRecord }
  /** EC2 does not show the connection. */
  | { kind: 'missing'; record?: ConnectionRecord }
  /** EC2 or the table could not be read; nothing was changed. */
  | { kind: 'unread'; failure: Failure; from: 'ec2' | 'table' }
  /** The record kept changing (the approver's conflict policy ran out). */
  | { kind: 'conflict'; error: ConflictError };

/** What a run did to one service. */
export interface ServiceOutcome {
  serviceId: string;
  policy: PolicyInForce | { kind: 'not-read' };
  counts: Counts;
  failures: ScopedFailure[];
  /** The latest record of each connection, as written or read. */
  records: Map<string, ConnectionRecord>;
  revocationLimit?: RevocationLimitReached;
  approval?: ApprovalOutcome;
}

/** A connection whose claim this run wrote, about to be acted on. */
interface Claimed {
  record: ConnectionRecord;
  claim: Claim;
  purpose: Purpose | undefined;
  planned: PlannedConnection;
  /** The record as the run read it: the events written since (the claim's write may add some) are this run's to publish. */
  readFirst: ConnectionRecord | undefined;
}

/** Carries out one service's plan. */
export async function applyServicePlan(
  initial: ServicePlan,
  service: ServiceSnapshot,
  facts: Pick<Snapshot, 'memberships' | 'confirmed'>,
  ports: EnginePorts,
  conflicts: ConflictPolicy,
  context: PlanContext,
): Promise<ServiceOutcome> {
  const { serviceId } = initial;
  const plan = await takePlaces(initial, service, facts, ports, context);
  const outcome: ServiceOutcome = {
    serviceId,
    policy: service.policy,
    counts: { ...noCounts(), observed: service.connections.length },
    failures: [...plan.failures],
    records: new Map(service.connections.flatMap(({ endpointId }) => {
      const record = service.records.get(endpointId);
      return record ? [[endpointId, record] as const] : [];
    })),
  };
  const approve = service.work.approve;
  if (approve) outcome.approval = approvalBeforeActing(approve.endpointId, service, plan);

  const claims: Claimed[] = [];
  const writeFailures = await forEachSettled(plan.connections, WRITE_CONCURRENCY, async (planned) => {
    const { observed } = planned;
    const written = await writeChange(planned, ports, conflicts, context);
    if (!written) return;
    const { change, before } = written;
    if (change.kind === 'unchanged') {
      if (before?.outbox?.length) await publishOutbox(before, before, ports);
    } else {
      outcome.records.set(observed.endpointId, change.next);
      tally(outcome, before, change.next);
      if (change.kind === 'act') claims.push({ record: change.next, claim: change.claim, purpose: purposeOf(planned, change), planned, readFirst: before });
      else await publishOutbox(change.next, before, ports);
    }
    if (approve?.endpointId === observed.endpointId && change.kind !== 'act' && change.refusal) {
      outcome.approval = { kind: 'refused', refusal: change.refusal, record: change.kind === 'record' ? change.next : before };
    }
  });
  for (const { item, error } of writeFailures) {
    logger.error('could not write a connection; it is left undecided', { serviceId, endpointId: item.observed.endpointId, error });
    outcome.failures.push({ serviceId, endpointId: item.observed.endpointId, ...describeError(error) });
    if (approve?.endpointId === item.observed.endpointId) {
      outcome.approval = error instanceof ConflictError ? { kind: 'conflict', error } : { kind: 'unread', failure: describeError(error), from: 'table' };
    }
  }

  const ec2 = ports.ec2.forService(serviceId);
  for (const action of ['accept', 'reject'] as const) {
    const batch = claims.filter(({ claim }) => claim.outcome === action);
    for (let i = 0; i < batch.length; i += EC2_ACTION_BATCH_SIZE) {
      const part = batch.slice(i, i + EC2_ACTION_BATCH_SIZE);
      const { answers, failed } = await inHalves(part.map(({ record }) => record.endpointId), (ids) => ec2.act(action, serviceId, ids));
      const refused = new Map([...failed, ...answers.flatMap((unsuccessful) => [...unsuccessful])]);
      await recordResults(part, refused, outcome, ec2, ports, context);
    }
  }

  // Only a run that wrote records has changes of its own to count (those of runs at the same time are theirs to write).
  if (plan.connections.some(({ change }) => change.kind !== 'unchanged')) await writeCounts(serviceId, ports);
  if (plan.revocationLimit) await alertRevocationLimit(serviceId, plan.revocationLimit, ports, context);
  outcome.revocationLimit = plan.revocationLimit;
  outcome.counts.failed = new Set(outcome.failures.map((failure) => failure.endpointId ?? '*')).size;
  outcome.counts.pending = service.connections.filter(
    (c) => c.state === 'pendingAcceptance' && outcome.records.get(c.endpointId)?.state !== 'pending' && outcome.records.get(c.endpointId)?.state !== 'rejected',
  ).length;
  return outcome;
}

/**
 * Writes each account's places before any accept takes one. A write that loses
 * to another decider reads the places again and plans the service again with
 * them: an accept that no longer finds a place is unmatched.
 */
async function takePlaces(
  initial: ServicePlan,
  service: ServiceSnapshot,
  facts: Pick<Snapshot, 'memberships' | 'confirmed'>,
  ports: EnginePorts,
  context: PlanContext,
): Promise<ServicePlan> {
  if (!initial.places.length) return initial;
  const { serviceId } = initial;
  const places = new Map(service.places);
  let plan = initial;
  for (const { accountId } of initial.places) {
    const read = places.get(accountId);
    if (!read || 'unreadable' in read) continue;
    const { ec2 } = read;
    try {
      await writeVersioned<AccountPlaces, true>(
        {
          read: async () => {
            const { endpointIds, version } = await ports.places.get(serviceId, accountId);
            return { reserved: endpointIds, version, ec2 };
          },
          write: (next, expected) => ports.places.put(serviceId, accountId, [...next.reserved], expected?.version ?? 0),
        },
        read,
        (latest, attempt) => {
          if (attempt > 1 && latest) {
            places.set(accountId, latest);
            plan = planService({ ...service, places }, facts, context);
          }
          const change = plan.places.find((p) => p.accountId === accountId);
          if (!change) return { stop: true };
          const next = { reserved: change.reserved, version: change.expectedVersion + 1, ec2 };
          places.set(accountId, next);
          return { write: next, then: true };
        },
        { attempts: PLACE_ATTEMPTS, whenExhausted: 'throw' },
      );
    } catch (error) {
      logger.error("could not take an account's places; its requests are decided again later", { serviceId, accountId, error });
      places.set(accountId, { unreadable: describeError(error) });
    }
    plan = planService({ ...service, places }, facts, context);
  }
  return plan;
}

/** Writes one connection's change; a lost race plans it again from the latest record. Undefined: left to another writer. */
async function writeChange(
  planned: PlannedConnection,
  ports: EnginePorts,
  conflicts: ConflictPolicy,
  context: PlanContext,
): Promise<{ change: Change; before: ConnectionRecord | undefined } | undefined> {
  if (planned.change.kind === 'unchanged') return { change: planned.change, before: planned.before };
  return writeVersioned<ConnectionRecord, { change: Change; before: ConnectionRecord | undefined }>(
    connectionItem(ports, planned.observed),
    planned.before,
    (latest, attempt) => {
      const change = attempt === 1 ? planned.change : replanConnection(planned, latest, context);
      if (change.kind === 'unchanged') return { stop: { change, before: latest } };
      return { write: change.next, then: { change, before: latest } };
    },
    conflicts,
  );
}

function purposeOf(planned: PlannedConnection, change: Extract<Change, { kind: 'act' }>): Purpose | undefined {
  return change.by === 'verdict' ? 'decide' : planned.wantPurpose;
}

/** The approver's connection as the plan found it, before anything is written. */
function approvalBeforeActing(endpointId: string, service: ServiceSnapshot, plan: ServicePlan): ApprovalOutcome | undefined {
  const unread = service.unread.find((unread) => !unread.endpointIds || unread.endpointIds.includes(endpointId));
  if (unread) return { kind: 'unread', failure: unread.failure, from: unread.from };
  if (!plan.connections.some((planned) => planned.observed.endpointId === endpointId)) return { kind: 'missing', record: service.records.get(endpointId) };
  return undefined;
}

/**
 * Records how each claim ended: the decision (its event published ahead of the
 * write), what EC2 shows instead when it refused an item that was already
 * decided, or the failure, which releases the claim.
 */
async function recordResults(
  batch: Claimed[],
  refused: Map<string, Failure>,
  outcome: ServiceOutcome,
  ec2: Ec2Connections,
  ports: EnginePorts,
  context: PlanContext,
): Promise<void> {
  const { serviceId } = outcome;
  const contextOf = (claimed: Claimed) => ({ ...context, now: ports.clock.now(), source: claimed.planned.source });
  const done = batch.filter(({ record }) => !refused.has(record.endpointId));
  const notDone = batch.filter(({ record }) => refused.has(record.endpointId));
  const unrecorded = await forEachSettled(done, WRITE_CONCURRENCY, async (claimed) => {
    const { record, claim } = claimed;
    const written = await finishClaim(claimed, (latest) => completeClaim(latest, claim, contextOf(claimed)), ports, { publishFirst: true });
    const final = written ?? record;
    outcome.records.set(record.endpointId, final);
    count(outcome, claimed);
    if (outcome.approval === undefined && claimed.purpose === 'approve') outcome.approval = { kind: 'done', record: final };
    logger.info(`connection ${claim.outcome}ed`, { serviceId, endpointId: record.endpointId, rule: claim.rule, decidedBy: claim.decidedBy });
  });
  for (const { item, error } of unrecorded) {
    // EC2 acted: the claim, once its lease runs out, is finished from EC2's state by whoever comes next.
    logger.error('EC2 acted but the outcome could not be recorded; it will be', { serviceId, endpointId: item.record.endpointId, error });
    outcome.failures.push({ serviceId, endpointId: item.record.endpointId, ...describeError(error) });
    if (item.purpose === 'approve') outcome.approval = { kind: 'done', record: item.record };
  }
  if (!notDone.length) return;
  // Refused per item: an endpoint that is already decided is not an error, so
  // read EC2 again and record what is true; anything else failed. When that read
  // fails too, the claims are failed all the same, so nobody waits out a lease.
  let current = new Map<string, ObservedConnection>();
  try {
    const now = await ec2.describe({ serviceId, endpointIds: notDone.map(({ record }) => record.endpointId) });
    current = new Map(now.map((connection) => [connection.endpointId, connection]));
  } catch (error) {
    logger.error('could not read EC2 again after it refused an action', { serviceId, error });
  }
  const unfinished = await forEachSettled(notDone, WRITE_CONCURRENCY, async (claimed) => {
    const { record, claim } = claimed;
    const observed = current.get(record.endpointId);
    const failure = refused.get(record.endpointId) ?? { code: 'Unknown', message: 'no reason given' };
    if (observed && observed.state !== claim.from) {
      logger.info('connection was decided elsewhere', { serviceId, endpointId: record.endpointId, state: observed.state, code: failure.code });
      const written = await finishClaim(claimed, (latest) => settledElsewhere(latest, claim, observed, contextOf(claimed)), ports);
      if (written) outcome.records.set(record.endpointId, written);
      if (claimed.purpose === 'approve') outcome.approval = { kind: 'elsewhere', state: observed.state, record: written };
      return;
    }
    logger.error('could not act on a connection; it will be retried', { serviceId, endpointId: record.endpointId, action: claim.outcome, ...failure });
    outcome.failures.push({ serviceId, endpointId: record.endpointId, ...failure });
    if (claimed.purpose === 'approve') outcome.approval = { kind: 'failed', failure };
    const written = await finishClaim(claimed, (latest) => failClaim(latest, claim, failure, contextOf(claimed)), ports);
    if (written) outcome.records.set(record.endpointId, written);
  });
  for (const { item, error } of unfinished) {
    logger.error('could not record how an action ended', { serviceId, endpointId: item.record.endpointId, error });
    if (!outcome.failures.some((failure) => failure.endpointId === item.record.endpointId)) {
      outcome.failures.push({ serviceId, endpointId: item.record.endpointId, ...describeError(error) });
    }
  }
}

/**
 * Writes the end of a claim, unless another writer already ended it; returns
 * what it wrote, once the events this run added (with the claim and with its
 * end) are published. With `publishFirst`, the events the end adds are
 * published before the write, so that they never need a second write to leave
 * the outbox.
 */
async function finishClaim(
  { record, claim, readFirst }: Claimed,
  finish: (latest: ConnectionRecord) => ConnectionRecord,
  ports: EnginePorts,
  { publishFirst = false } = {},
): Promise<ConnectionRecord | undefined> {
  const ended = await writeVersioned<ConnectionRecord, { before: ConnectionRecord; written: ConnectionRecord } | undefined>(
    connectionItem(ports, record),
    record,
    async (latest) => {
      if (!latest || latest.claim?.token !== claim.token) return { stop: undefined };
      const next = finish(latest);
      const write = publishFirst ? await publishAhead(next, latest, ports) : next;
      return { write, then: { before: latest, written: write } };
    },
    { attempts: FINISH_ATTEMPTS, whenExhausted: 'throw' },
  );
  if (!ended) return undefined;
  await publishOutbox(ended.written, readFirst, ports);
  return ended.written;
}

/**
 * The counts by state of what the plan changed, one write for the whole service,
 * before the run moves on. A write that fails leaves them for the next one: the
 * records are written, and nothing is decided again for it.
 */
async function writeCounts(serviceId: string, ports: EnginePorts): Promise<void> {
  try {
    await ports.records.writeCounts();
  } catch (error) {
    logger.error('the counts of the changes recorded could not be written yet; the next write carries them', { serviceId, error });
  }
}

function tally(outcome: ServiceOutcome, before: ConnectionRecord | undefined, after: ConnectionRecord): void {
  const repairs = repairsOf(before, after);
  outcome.counts.firstSeen += repairs.firstSeen;
  outcome.counts.stateChanged += repairs.stateChanged;
  outcome.counts.recovered += repairs.recovered;
  if (after.history.slice(before?.history.length ?? 0).some((entry) => entry.type === 'reminded') || (after.remindedAt && after.remindedAt !== before?.remindedAt)) {
    outcome.counts.reminded++;
  }
}

function count(outcome: ServiceOutcome, { claim, purpose }: Claimed): void {
  if (purpose === 'revoke') outcome.counts.revoked++;
  else if (purpose === 'time-out') outcome.counts.timedOut++;
  else outcome.counts[claim.outcome === 'accept' ? 'accepted' : 'rejected']++;
}

async function alertRevocationLimit(serviceId: string, reached: RevocationLimitReached, ports: EnginePorts, context: PlanContext): Promise<void> {
  logger.warn('revocation limit reached: nothing revoked, a human decides', { serviceId, candidates: reached.candidates.length, admitted: reached.admitted, ...reached.limits });
  const event: RevocationLimitEvent = {
    eventId: context.newId(),
    eventType: 'revocation-limit-reached',
    occurredAt: ports.clock.now().toISOString(),
    serviceId,
    policyId: reached.policyId,
    admitted: reached.admitted,
    limits: reached.limits,
    candidateCount: reached.candidates.length,
    candidates: reached.candidates.slice(0, MAX_CANDIDATES_IN_ALERT),
  };
  await ports.publisher.publish(event);
}

const MAX_CANDIDATES_IN_ALERT = 100;
