import { randomUUID } from 'node:crypto';
import { isAdmitted, type Claim, type ConnectionRecord, type ConnectionState, type ObservedConnection } from './domain/connection';
import { completeClaim, failClaim, planConnection, withoutPublished, type PlanContext } from './domain/decisions';
import { parseNotification, recordReflects, type ConnectionEvent } from './domain/notification';
import { claimDelivery, releaseDelivery, type Delivery } from './aws/delivery-store';
import { evaluatePolicy, type Evaluation } from './domain/policy';
import { actOnConnections, describeConnections, listEndpointServiceIds, type ActionFailure } from './aws/ec2-gateway';
import { getConnection, getConnections, putConnection } from './aws/connection-store';
import { resolvePolicy, type StoredPolicy } from './aws/policy-store';
import { publishEvent } from './aws/event-publisher';
import { ConflictError, RetryableActionError } from './errors';
import { forEachConcurrently } from './concurrency';
import type { Membership } from './domain/organization';
import { membershipsToDecide } from './organization-membership';
import { config } from './config';
import { logger } from './logger';

/** How often one connection's write is re-planned after losing a race. */
const MAX_WRITE_ATTEMPTS = 5;
/**
 * Connections settled, and results recorded, at the same time. A sweep of
 * thousands of connections is bound by table round trips; each connection's
 * writes stay in order, and different connections do not touch each other.
 */
const WRITE_CONCURRENCY = 16;

export interface Outcome {
  observed: number;
  accepted: number;
  rejected: number;
  failed: number;
  /** Records written for connections the table had never seen. */
  firstSeen: number;
  /** Records whose state EC2 reported changed (drift, when nothing announced it). */
  stateChanged: number;
  /** Claims of invocations that died, found carried out in EC2 and recorded without a second call. */
  recovered: number;
}

/**
 * Handles one endpoint connection notification: finds what it points at, reads
 * the truth from EC2, and decides every connection involved.
 */
export async function handleNotification(message: string): Promise<Outcome> {
  const target = parseNotification(message);
  const source = `notification:${target.eventType ?? 'unknown'}`;
  let connections: ObservedConnection[];
  const [endpointId, ...others] = target.endpointIds;
  const [serviceId, ...otherServices] = target.serviceIds;
  if (endpointId && !others.length && serviceId && !otherServices.length && target.eventType) {
    return handleEndpointEvent({ serviceId, endpointId, eventType: target.eventType }, source);
  }
  if (target.endpointIds.length) {
    connections = await describeConnections({ serviceId: otherServices.length ? undefined : serviceId, endpointIds: target.endpointIds });
  } else {
    let serviceIds = target.serviceIds;
    if (!serviceIds.length) {
      logger.warn('notification names no endpoint or service; sweeping every managed service', { rawMessage: message });
      serviceIds = await managedServiceIds();
    }
    connections = await sweep(serviceIds);
  }
  return decideConnections(connections.filter(isManaged), source);
}

const NOTHING_DONE: Outcome = { observed: 0, accepted: 0, rejected: 0, failed: 0, firstSeen: 0, stateChanged: 0, recovered: 0 };

/**
 * One event about one endpoint, the usual notification. Copies of it that SNS
 * delivers while it is handled are dropped, and EC2 is read only when the
 * record does not already show what the event announces.
 */
async function handleEndpointEvent(delivery: Delivery & { eventType: ConnectionEvent }, source: string): Promise<Outcome> {
  if (!managesService(delivery.serviceId)) return NOTHING_DONE;
  if (!(await claimDelivery(delivery))) {
    logger.info('another delivery of this notification is being handled', { ...delivery });
    return NOTHING_DONE;
  }
  try {
    const record = await getConnection(delivery.serviceId, delivery.endpointId);
    if (recordReflects(record, delivery.eventType, new Date())) return NOTHING_DONE;
    const connections = await describeConnections({ serviceId: delivery.serviceId, endpointIds: [delivery.endpointId] });
    return await decideConnections(connections, source, new Map([[delivery.endpointId, record]]));
  } catch (error) {
    await releaseDelivery(delivery);
    throw error;
  }
}

/** Reads the pendingAcceptance connections of services. */
async function sweep(serviceIds: string[]): Promise<ObservedConnection[]> {
  const connections: ObservedConnection[] = [];
  for (const serviceId of serviceIds.filter((id) => isManaged({ serviceId: id }))) {
    connections.push(...(await describeConnections({ serviceId, states: ['pendingAcceptance'] })));
  }
  return connections;
}

/** The endpoint services this stage manages: the configured list, else every one of the account. */
export async function managedServiceIds(): Promise<string[]> {
  const configured = config().MANAGED_SERVICE_IDS;
  return configured.length ? configured : listEndpointServiceIds();
}

/**
 * Whether this stage manages an endpoint service. With no list configured, every
 * endpoint service of the account is (EC2 only ever shows the account's own).
 */
export function managesService(serviceId: string): boolean {
  const configured = config().MANAGED_SERVICE_IDS;
  return !configured.length || configured.includes(serviceId);
}

function isManaged(connection: { serviceId: string }): boolean {
  const managed = managesService(connection.serviceId);
  if (!managed) logger.info('ignoring a connection of an unmanaged service', { serviceId: connection.serviceId });
  return managed;
}

/** How many of an account's endpoints on a service EC2 shows admitted (pending or available). */
export async function countAdmittedEndpoints(serviceId: string, accountId: string): Promise<number> {
  const ofAccount = await describeConnections({ serviceId, ownerAccountId: accountId });
  return ofAccount.filter((connection) => isAdmitted(connection.state)).length;
}

/**
 * Records what EC2 reports for each connection, decides the pendingAcceptance
 * ones by policy, acts on them in batches, and publishes the outcome. Throws
 * RetryableActionError after recording if any action failed, so it is retried.
 */
export async function decideConnections(
  connections: ObservedConnection[],
  source: string,
  /** Records the caller has just read (undefined: none in the table), by endpoint id; not read again. */
  alreadyRead: ReadonlyMap<string, ConnectionRecord | undefined> = new Map(),
): Promise<Outcome> {
  const outcome: Outcome = { observed: connections.length, accepted: 0, rejected: 0, failed: 0, firstSeen: 0, stateChanged: 0, recovered: 0 };
  for (const [serviceId, ofService] of groupBy(connections, (c) => c.serviceId)) {
    const service = await ServiceDecisions.start(serviceId, ofService, source, alreadyRead);
    const claims = await service.settleAll(ofService);
    for (const key of ['firstSeen', 'stateChanged', 'recovered'] as const) outcome[key] += service.tally[key];
    for (const result of (await carryOutClaims(serviceId, claims, source)).values()) {
      if (result.status === 'failed') outcome.failed++;
      else if (result.status === 'done' && result.record.decision) outcome[result.record.decision.outcome === 'accept' ? 'accepted' : 'rejected']++;
    }
  }
  if (outcome.failed) throw new RetryableActionError(`${outcome.failed} connection action(s) failed and will be retried`);
  return outcome;
}

/** A connection this invocation holds the claim on, as written. */
export interface Claimed {
  record: ConnectionRecord;
  claim: Claim;
}

/** The decisions about one service's connections within one invocation. */
class ServiceDecisions {
  /** Per account: its admitted endpoints as EC2 showed them, plus the accepts claimed since. */
  private readonly admittedByAccount = new Map<string, Promise<{ count: number }>>();
  /** What settling found out of line with EC2. */
  readonly tally = { firstSeen: 0, stateChanged: 0, recovered: 0 };

  private constructor(
    private readonly serviceId: string,
    private readonly policy: StoredPolicy | undefined,
    private readonly known: Map<string, ConnectionRecord>,
    private readonly source: string,
    /** The owners' places in the organization, when the policy names an OU or an organization. */
    private readonly memberships: Map<string, Membership>,
  ) {}

  static async start(
    serviceId: string,
    connections: ObservedConnection[],
    source: string,
    alreadyRead: ReadonlyMap<string, ConnectionRecord | undefined>,
  ): Promise<ServiceDecisions> {
    // Either read fails the invocation: no decision is made on an unreadable policy or table.
    const policy = await resolvePolicy(serviceId);
    const unread = connections.filter(({ endpointId }) => !alreadyRead.has(endpointId));
    const known = await getConnections(unread.map(({ endpointId }) => ({ serviceId, endpointId })));
    for (const [endpointId, record] of alreadyRead) if (record) known.set(endpointId, record);
    const memberships = await membershipsToDecide(policy?.policy, connections);
    return new ServiceDecisions(serviceId, policy, known, source, memberships);
  }

  /** Brings every record in line with EC2 and claims the connections to act on. */
  async settleAll(connections: ObservedConnection[]): Promise<Claimed[]> {
    const claims: Claimed[] = [];
    await forEachConcurrently(connections, WRITE_CONCURRENCY, async (observed) => {
      const claimed = await this.settle(observed);
      if (claimed) claims.push(claimed);
    });
    return claims;
  }

  private async settle(observed: ObservedConnection): Promise<Claimed | undefined> {
    let record = this.known.get(observed.endpointId);
    for (let attempt = 1; ; attempt++) {
      const pending = observed.state === 'pendingAcceptance';
      const admitted = pending && this.policy?.policy.maxEndpointsPerAccount !== undefined ? await this.admitted(observed.ownerAccountId) : undefined;
      // Nothing is awaited from reading the count to reserving a place in it, so
      // connections of one account settled at the same time count each other.
      const evaluation = pending ? this.evaluate(observed, admitted?.count ?? 0) : undefined;
      const plan = planConnection(record, observed, evaluation, this.context());
      if (plan.kind === 'unchanged') {
        if (record) await flushOutbox(record, record);
        return undefined;
      }
      const reserved = plan.kind === 'act' && plan.claim.outcome === 'accept' && admitted;
      if (reserved) reserved.count++;
      try {
        await putConnection(plan.next, record?.version);
      } catch (error) {
        if (reserved) reserved.count--;
        if (!(error instanceof ConflictError) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
        record = await getConnection(observed.serviceId, observed.endpointId);
        continue;
      }
      this.countRepairs(record, plan.next);
      if (plan.kind === 'act') return { record: plan.next, claim: plan.claim };
      await flushOutbox(plan.next, record);
      return undefined;
    }
  }

  private evaluate(observed: ObservedConnection, admitted: number): Evaluation {
    return evaluatePolicy(
      this.policy?.policy,
      { accountId: observed.ownerAccountId, region: observed.region },
      { now: new Date(), admittedEndpointsOfAccount: admitted, membership: this.memberships.get(observed.ownerAccountId) },
    );
  }

  private admitted(accountId: string): Promise<{ count: number }> {
    let entry = this.admittedByAccount.get(accountId);
    if (!entry) {
      entry = countAdmittedEndpoints(this.serviceId, accountId).then((count) => ({ count }));
      this.admittedByAccount.set(accountId, entry);
    }
    return entry;
  }

  private countRepairs(before: ConnectionRecord | undefined, after: ConnectionRecord): void {
    if (!before) this.tally.firstSeen++;
    else if (before.state !== after.state) this.tally.stateChanged++;
    if (before?.claim?.status === 'acting' && !after.claim && after.decision !== before.decision) this.tally.recovered++;
  }

  private context(): PlanContext {
    return planContext(this.source);
  }
}

/** What became of a claimed connection once EC2 was asked to act on it. */
export type ClaimResult =
  | { status: 'done'; record: ConnectionRecord }
  | { status: 'elsewhere'; state: ConnectionState }
  | { status: 'failed'; failure: ActionFailure };

/**
 * Asks EC2 to carry out claims on one service's connections, one batch per
 * action, and records each result: the decision, what EC2 says instead when it
 * refused an item that was already decided, or the failure.
 */
export async function carryOutClaims(serviceId: string, claims: Claimed[], source: string): Promise<Map<string, ClaimResult>> {
  const results = new Map<string, ClaimResult>();
  for (const action of ['accept', 'reject'] as const) {
    const batch = claims.filter(({ claim }) => claim.outcome === action);
    if (!batch.length) continue;
    let failures: Map<string, ActionFailure>;
    try {
      failures = await actOnConnections(action, serviceId, batch.map(({ record }) => record.endpointId));
    } catch (error) {
      const failure = describeError(error);
      logger.error('EC2 refused a whole batch', { serviceId, action, size: batch.length, error });
      failures = new Map(batch.map(({ record }) => [record.endpointId, failure]));
    }
    await recordResults(serviceId, batch, failures, source, results);
  }
  return results;
}

async function recordResults(
  serviceId: string,
  batch: Claimed[],
  failures: Map<string, ActionFailure>,
  source: string,
  results: Map<string, ClaimResult>,
): Promise<void> {
  const context = () => planContext(source);
  const refused = batch.filter(({ record }) => failures.has(record.endpointId));
  const done = batch.filter(({ record }) => !failures.has(record.endpointId));
  await forEachConcurrently(done, WRITE_CONCURRENCY, async ({ record, claim }) => {
    const written = await finishClaim(record, claim, (current) => completeClaim(current, claim, context()), { publishFirst: true });
    results.set(record.endpointId, { status: 'done', record: written ?? record });
    logger.info(`connection ${claim.outcome}ed`, { serviceId, endpointId: record.endpointId, rule: claim.rule, decidedBy: claim.decidedBy });
  });
  if (!refused.length) return;
  // Refused per item: an endpoint that is already decided is not an error, so
  // read EC2 again and record what is true; anything else failed.
  const now = await describeConnections({ serviceId, endpointIds: refused.map(({ record }) => record.endpointId) });
  const current = new Map(now.map((connection) => [connection.endpointId, connection]));
  for (const { record, claim } of refused) {
    const observed = current.get(record.endpointId);
    const failure = failures.get(record.endpointId) ?? { code: 'Unknown', message: 'no reason given' };
    if (observed && observed.state !== claim.from) {
      logger.info('connection was decided elsewhere', { endpointId: record.endpointId, state: observed.state, code: failure.code });
      await finishClaim(record, claim, (latest) => settledElsewhere(latest, claim, observed, context()));
      results.set(record.endpointId, { status: 'elsewhere', state: observed.state });
      continue;
    }
    logger.error('could not act on a connection; it will be retried', { endpointId: record.endpointId, action: claim.outcome, ...failure });
    await finishClaim(record, claim, (latest) => failClaim(latest, claim, failure, context()));
    results.set(record.endpointId, { status: 'failed', failure });
  }
}

/**
 * Writes the end of a claim, unless another invocation already did; returns what
 * it wrote. With `publishFirst`, the events the end adds are published before the
 * write and so never need a second write to leave the outbox: that is safe only
 * for events whose id the claim fixed (outcomeEventId), which a crash before the
 * write publishes again under the same id. Events that fail to publish stay in
 * the outbox.
 */
async function finishClaim(
  record: ConnectionRecord,
  claim: Claim,
  finish: (latest: ConnectionRecord) => ConnectionRecord,
  { publishFirst = false } = {},
): Promise<ConnectionRecord | undefined> {
  let latest: ConnectionRecord | undefined = record;
  for (let attempt = 1; latest?.claim?.token === claim.token; attempt++) {
    let next = finish(latest);
    if (publishFirst) next = await publishedAhead(next, latest);
    try {
      await putConnection(next, latest.version);
      await flushOutbox(next, latest);
      return next;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
      latest = await getConnection(record.serviceId, record.endpointId);
    }
  }
  return undefined;
}

/** The record without the outbox events that `record` added to `before`, once they are published. */
async function publishedAhead(record: ConnectionRecord, before: ConnectionRecord): Promise<ConnectionRecord> {
  const existing = new Set((before.outbox ?? []).map((event) => event.eventId));
  const published = new Set<string>();
  try {
    for (const event of record.outbox ?? []) {
      if (existing.has(event.eventId)) continue;
      await publishEvent(event);
      published.add(event.eventId);
    }
  } catch (error) {
    logger.warn('could not publish ahead of the write; the event stays in the outbox', { endpointId: record.endpointId, error });
  }
  const outbox = (record.outbox ?? []).filter((event) => !published.has(event.eventId));
  return { ...record, outbox: outbox.length ? outbox : undefined };
}

/** The fresh values a plan needs, now. */
export function planContext(source: string): PlanContext {
  return { now: new Date(), newId: randomUUID, leaseSeconds: config().DECISION_LEASE_SECONDS, source };
}

function settledElsewhere(record: ConnectionRecord, claim: Claim, observed: ObservedConnection, context: PlanContext): ConnectionRecord {
  const plan = planConnection({ ...record, claim: { ...claim, status: 'acting' } }, observed, undefined, {
    ...context,
    source: 'ec2-action',
  });
  return plan.kind === 'unchanged' ? { ...record, claim: undefined, version: record.version + 1 } : plan.next;
}

/**
 * Publishes the outbox events that the write from `before` to `record` added,
 * and any left behind for longer than a lease by an invocation that died, then
 * removes them from the record. A crash in between publishes again later:
 * subscribers may see an event twice (same eventId), never not at all.
 */
export async function flushOutbox(record: ConnectionRecord, before: ConnectionRecord | undefined): Promise<void> {
  const existing = new Set((before?.outbox ?? []).map((event) => event.eventId));
  const abandonedBefore = Date.now() - config().DECISION_LEASE_SECONDS * 1000;
  const events = (record.outbox ?? []).filter(
    (event) => !existing.has(event.eventId) || Date.parse(event.occurredAt) < abandonedBefore,
  );
  if (!events.length) return;
  for (const event of events) await publishEvent(event);
  const published = new Set(events.map((event) => event.eventId));
  let latest: ConnectionRecord | undefined = record;
  for (let attempt = 1; latest?.outbox?.some((event) => published.has(event.eventId)); attempt++) {
    try {
      await putConnection(withoutPublished(latest, published, new Date()), latest.version);
      return;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
      latest = await getConnection(record.serviceId, record.endpointId);
    }
  }
}

function describeError(error: unknown): ActionFailure {
  if (error instanceof Error) return { code: error.name, message: error.message };
  return { code: 'Unknown', message: String(error) };
}

function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  return groups;
}
