import { randomUUID } from 'node:crypto';
import { claimIsLive, isAdmitted, type Claim, type ConnectionRecord, type ConnectionState, type ObservedConnection } from './domain/connection';
import { completeClaim, failClaim, planConnection, repairsOf, settledElsewhere, type Plan, type PlanContext } from './domain/decisions';
import { evaluatePolicy, type Evaluation } from './domain/policy';
import { actOnConnections, describeConnections, type ActionFailure } from './aws/ec2-gateway';
import { getConnections } from './aws/connection-store';
import { getAdmissionPlaces, putAdmissionPlaces } from './aws/admission-store';
import { placesTaken, type AccountConnections } from './domain/admission';
import { ConflictError } from './errors';
import { resolvePolicy, type StoredPolicy } from './aws/policy-store';
import { updateConnection } from './conditional-update';
import { flushOutbox, publishedAhead } from './outbox';
import { forEachSettled } from './concurrency';
import { config } from './config';
import type { Membership } from './domain/organization';
import { membershipsToDecide } from './organization-membership';
import { logger } from './logger';

/**
 * Where a decision is made: the engine that the notifications, the reconciler
 * and the approvals API share. It records what EC2 reports, decides pending
 * connections by policy, claims each one it acts on, acts in batches, and
 * records and announces the outcome.
 */

/** Lost races tolerated per connection while bringing its record in line with EC2. */
const SETTLE_ATTEMPTS = 5;
/** Lost races tolerated while taking one of an account's places under maxEndpointsPerAccount. */
const PLACE_ATTEMPTS = 8;
/** Lost races tolerated while recording how a claim ended (only while the claim is still ours). */
const FINISH_ATTEMPTS = 5;
/**
 * Connections settled, and results recorded, at the same time. A sweep of
 * thousands of connections is bound by table round trips; each connection's
 * writes stay in order, and different connections do not touch each other.
 */
const WRITE_CONCURRENCY = 16;

/** What the engine did. */
export interface Counts {
  observed: number;
  accepted: number;
  rejected: number;
  /** Connections that could not be decided (an action EC2 refused or failed, a read or write that failed). */
  failed: number;
  /** Records written for connections the table had never seen. */
  firstSeen: number;
  /** Records whose state EC2 reported changed (drift, when nothing announced it). */
  stateChanged: number;
  /** Claims of invocations that died, found carried out in EC2 and recorded without a second call. */
  recovered: number;
}

export function noCounts(): Counts {
  return { observed: 0, accepted: 0, rejected: 0, failed: 0, firstSeen: 0, stateChanged: 0, recovered: 0 };
}

export function addCounts(into: Counts, more: Counts): void {
  for (const key of Object.keys(into) as (keyof Counts)[]) into[key] += more[key];
}

/** Something the engine could not do; the rest of its work went on. */
export interface DecisionFailure {
  serviceId: string;
  /** Absent when the whole service failed (its policy or its records could not be read). */
  endpointId?: string;
  code: string;
  message: string;
}

/** What deciding came to: counts, failures, and every connection's latest record as written or read. */
export interface Decided {
  counts: Counts;
  failures: DecisionFailure[];
  records: Map<string, ConnectionRecord>;
}

export interface DecideOptions {
  /** Where the observation came from, for the history: one for all, or per connection. */
  source: string | ((connection: { serviceId: string; endpointId: string }) => string);
  /** Records the caller has just read (undefined: none in the table), by endpoint id; not read again. */
  records?: ReadonlyMap<string, ConnectionRecord | undefined>;
  /** The service's policy as the caller read it (the reconciler reads each once per run); read here when absent. */
  policy?: { stored: StoredPolicy | undefined };
}

/**
 * Records what EC2 reports for each connection, decides the pendingAcceptance
 * ones by policy, acts on them in batches of 100 per service, and publishes the
 * outcome. Never throws for a connection or a service: what failed is in
 * `failures`, and the rest is decided.
 */
export async function decideConnections(connections: ObservedConnection[], options: DecideOptions): Promise<Decided> {
  const decided: Decided = { counts: noCounts(), failures: [], records: new Map() };
  for (const [serviceId, ofService] of groupBy(connections, (c) => c.serviceId)) {
    const result = await decideService(serviceId, ofService, options);
    addCounts(decided.counts, result.counts);
    decided.failures.push(...result.failures);
    for (const [endpointId, record] of result.records) decided.records.set(endpointId, record);
  }
  return decided;
}

/** decideConnections for the connections of one service. */
export async function decideService(serviceId: string, connections: ObservedConnection[], options: DecideOptions): Promise<Decided> {
  const counts = { ...noCounts(), observed: connections.length };
  let service: ServiceDecisions;
  try {
    service = await ServiceDecisions.start(serviceId, connections, options);
  } catch (error) {
    // Fail closed: no decision on an unreadable policy or table.
    logger.error('could not read what deciding a service needs; its connections are left undecided', { serviceId, error });
    return { counts: { ...counts, failed: connections.length }, failures: [{ serviceId, ...describeError(error) }], records: new Map() };
  }
  const { claims, failures } = await service.settleAll(connections);
  addCounts(counts, { ...noCounts(), ...service.tally });
  for (const [endpointId, result] of await carryOutClaims(serviceId, claims, options.source)) {
    if (result.status === 'failed') failures.push({ serviceId, endpointId, ...result.failure });
    else if (result.status === 'done' && result.record.decision) counts[result.record.decision.outcome === 'accept' ? 'accepted' : 'rejected']++;
    if (result.status === 'done') service.records.set(endpointId, result.record);
  }
  counts.failed = failures.length;
  return { counts, failures, records: service.records };
}

/** A connection this invocation holds the claim on, as written. */
export interface Claimed {
  record: ConnectionRecord;
  claim: Claim;
}

/** The decisions about one service's connections within one invocation. */
class ServiceDecisions {
  /** Per account: its connections on this service as EC2 showed them. */
  private readonly byAccount = new Map<string, Promise<AccountConnections>>();
  /** Per account: the last place being taken, so that this invocation takes them one at a time. */
  private readonly placeQueue = new Map<string, Promise<void>>();
  /** What settling found out of line with EC2. */
  readonly tally = { firstSeen: 0, stateChanged: 0, recovered: 0 };

  private constructor(
    private readonly serviceId: string,
    private readonly policy: StoredPolicy | undefined,
    /** The latest record of each connection, as read or written. */
    readonly records: Map<string, ConnectionRecord>,
    private readonly source: DecideOptions['source'],
    /** The owners' places in the organization, when the policy names an OU or an organization. */
    private readonly memberships: Map<string, Membership>,
  ) {}

  static async start(serviceId: string, connections: ObservedConnection[], options: DecideOptions): Promise<ServiceDecisions> {
    const policy = options.policy ? options.policy.stored : await resolvePolicy(serviceId);
    const known = options.records ?? new Map<string, ConnectionRecord | undefined>();
    const unread = connections.filter(({ endpointId }) => !known.has(endpointId));
    const records = unread.length ? await getConnections(unread.map(({ endpointId }) => ({ serviceId, endpointId }))) : new Map<string, ConnectionRecord>();
    for (const { endpointId } of connections) {
      const record = known.get(endpointId);
      if (record) records.set(endpointId, record);
    }
    const memberships = await membershipsToDecide(policy?.policy, connections);
    return new ServiceDecisions(serviceId, policy, records, options.source, memberships);
  }

  /** Brings every record in line with EC2 and claims the connections to act on. */
  async settleAll(connections: ObservedConnection[]): Promise<{ claims: Claimed[]; failures: DecisionFailure[] }> {
    const claims: Claimed[] = [];
    const failed = await forEachSettled(connections, WRITE_CONCURRENCY, async (observed) => {
      const claimed = await this.settle(observed);
      if (claimed) claims.push(claimed);
    });
    const failures = failed.map(({ item, error }) => {
      logger.error('could not settle a connection; it is left undecided', { serviceId: this.serviceId, endpointId: item.endpointId, error });
      return { serviceId: this.serviceId, endpointId: item.endpointId, ...describeError(error) };
    });
    return { claims, failures };
  }

  private async settle(observed: ObservedConnection): Promise<Claimed | undefined> {
    const source = sourceOf(this.source, observed);
    const settled = await updateConnection(
      observed,
      this.records.get(observed.endpointId),
      async (record) => {
        const evaluation = observed.state === 'pendingAcceptance' ? await this.evaluateWithinLimit(observed, record) : undefined;
        const plan = planConnection(record, observed, evaluation, planContext(source));
        if (plan.kind === 'unchanged') {
          if (record) await flushOutbox(record, record);
          return { stop: undefined };
        }
        return { write: plan.next, then: { before: record, plan } };
      },
      { attempts: SETTLE_ATTEMPTS, whenExhausted: 'throw' },
    );
    if (!settled) return undefined;
    const { before, plan } = settled;
    const repairs = repairsOf(before, plan.next);
    for (const key of ['firstSeen', 'stateChanged', 'recovered'] as const) this.tally[key] += repairs[key];
    this.records.set(observed.endpointId, plan.next);
    if (plan.kind === 'act') return { record: plan.next, claim: plan.claim };
    await flushOutbox(plan.next, before);
    return undefined;
  }

  /**
   * The policy's verdict on a pending request. Under maxEndpointsPerAccount, an
   * accept first takes one of the account's places in the table (a conditional
   * write on one item per account and service), so that concurrent deciders,
   * in this invocation or any other, never admit beyond the limit.
   */
  private async evaluateWithinLimit(observed: ObservedConnection, record: ConnectionRecord | undefined): Promise<Evaluation> {
    const max = this.policy?.policy.maxEndpointsPerAccount;
    const unlimited = this.evaluate(observed, 0);
    if (max === undefined) return unlimited;
    const wouldAdmit = unlimited.act && unlimited.outcome === 'accept' && !record?.decision?.acted && !claimIsLive(record?.claim, new Date());
    if (!wouldAdmit) {
      const ec2 = await this.accountConnections(observed.ownerAccountId);
      return this.evaluate(observed, placesTaken([], ec2).size);
    }
    const taken = await this.takePlace(observed, max);
    return this.evaluate(observed, taken);
  }

  /** Takes a place for an endpoint among its account's; answers how many other places are taken (>= max: none left). */
  private takePlace(observed: ObservedConnection, max: number): Promise<number> {
    const { ownerAccountId: accountId, endpointId } = observed;
    // One at a time per account within this invocation; other invocations meet at the item's condition.
    const previous = this.placeQueue.get(accountId) ?? Promise.resolve();
    const turn = previous.catch(() => undefined).then(async () => {
      const ec2 = await this.accountConnections(accountId);
      for (let attempt = 1; attempt <= PLACE_ATTEMPTS; attempt++) {
        const places = await getAdmissionPlaces(this.serviceId, accountId);
        const taken = placesTaken(places.endpointIds, ec2);
        if (taken.delete(endpointId)) return taken.size;
        if (taken.size >= max) return taken.size;
        if (await putAdmissionPlaces(this.serviceId, accountId, [...taken, endpointId], places.version)) return taken.size;
      }
      throw new ConflictError(`the places of account ${accountId} on ${this.serviceId} kept changing; the request is decided again later`);
    });
    this.placeQueue.set(accountId, turn.then(() => undefined));
    return turn;
  }

  /** The account's connections on this service as EC2 shows them, read once per invocation. */
  private accountConnections(accountId: string): Promise<AccountConnections> {
    let entry = this.byAccount.get(accountId);
    if (!entry) {
      entry = describeConnections({ serviceId: this.serviceId, ownerAccountId: accountId }).then(
        (connections) => new Map(connections.map((c) => [c.endpointId, c.state])),
      );
      this.byAccount.set(accountId, entry);
    }
    return entry;
  }

  private evaluate(observed: ObservedConnection, admitted: number): Evaluation {
    return evaluatePolicy(
      this.policy?.policy,
      { accountId: observed.ownerAccountId, region: observed.region },
      { now: new Date(), admittedEndpointsOfAccount: admitted, membership: this.memberships.get(observed.ownerAccountId) },
    );
  }
}

/** How many of an account's endpoints on a service EC2 shows admitted (pending or available). */
export async function countAdmittedEndpoints(serviceId: string, accountId: string): Promise<number> {
  const ofAccount = await describeConnections({ serviceId, ownerAccountId: accountId });
  return ofAccount.filter((connection) => isAdmitted(connection.state)).length;
}

/** What became of a claimed connection once EC2 was asked to act on it. */
export type ClaimResult =
  | { status: 'done'; record: ConnectionRecord }
  | { status: 'elsewhere'; state: ConnectionState; record?: ConnectionRecord }
  | { status: 'failed'; failure: ActionFailure };

/**
 * Asks EC2 to carry out claims on one service's connections, one call per 100
 * endpoints and action, and records each result: the decision, what EC2 shows
 * instead when it refused an item that was already decided, or the failure.
 * Never throws: a result that could not be recorded is a failure.
 */
export async function carryOutClaims(serviceId: string, claims: Claimed[], source: DecideOptions['source']): Promise<Map<string, ClaimResult>> {
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
  source: DecideOptions['source'],
  results: Map<string, ClaimResult>,
): Promise<void> {
  const contextFor = (record: ConnectionRecord) => planContext(sourceOf(source, record));
  const refused = batch.filter(({ record }) => failures.has(record.endpointId));
  const done = batch.filter(({ record }) => !failures.has(record.endpointId));
  const unrecorded = await forEachSettled(done, WRITE_CONCURRENCY, async ({ record, claim }) => {
    const written = await finishClaim(record, claim, (current) => completeClaim(current, claim, contextFor(record)), { publishFirst: true });
    results.set(record.endpointId, { status: 'done', record: written ?? record });
    logger.info(`connection ${claim.outcome}ed`, { serviceId, endpointId: record.endpointId, rule: claim.rule, decidedBy: claim.decidedBy });
  });
  for (const { item, error } of unrecorded) {
    // EC2 acted: the claim, once its lease runs out, is finished from EC2's state by whoever comes next.
    logger.error('EC2 acted but the outcome could not be recorded; it will be', { serviceId, endpointId: item.record.endpointId, error });
    results.set(item.record.endpointId, { status: 'failed', failure: describeError(error) });
  }
  if (!refused.length) return;
  // Refused per item: an endpoint that is already decided is not an error, so
  // read EC2 again and record what is true; anything else failed. When that read
  // fails too, the claims are failed all the same, so nobody waits out a lease.
  let current = new Map<string, ObservedConnection>();
  try {
    const now = await describeConnections({ serviceId, endpointIds: refused.map(({ record }) => record.endpointId) });
    current = new Map(now.map((connection) => [connection.endpointId, connection]));
  } catch (error) {
    logger.error('could not read EC2 again after it refused an action', { serviceId, error });
  }
  const unfinished = await forEachSettled(refused, WRITE_CONCURRENCY, async ({ record, claim }) => {
    const observed = current.get(record.endpointId);
    const failure = failures.get(record.endpointId) ?? { code: 'Unknown', message: 'no reason given' };
    if (observed && observed.state !== claim.from) {
      logger.info('connection was decided elsewhere', { endpointId: record.endpointId, state: observed.state, code: failure.code });
      const written = await finishClaim(record, claim, (latest) => settledElsewhere(latest, claim, observed, contextFor(record)));
      results.set(record.endpointId, { status: 'elsewhere', state: observed.state, record: written });
      return;
    }
    logger.error('could not act on a connection; it will be retried', { endpointId: record.endpointId, action: claim.outcome, ...failure });
    results.set(record.endpointId, { status: 'failed', failure });
    await finishClaim(record, claim, (latest) => failClaim(latest, claim, failure, contextFor(record)));
  });
  for (const { item, error } of unfinished) {
    logger.error('could not record how an action ended', { serviceId, endpointId: item.record.endpointId, error });
    if (!results.has(item.record.endpointId)) results.set(item.record.endpointId, { status: 'failed', failure: describeError(error) });
  }
}

/**
 * Writes the end of a claim, unless another writer already ended it; returns
 * what it wrote. With `publishFirst`, the events the end adds are published
 * before the write, so that they never need a second write to leave the outbox.
 */
async function finishClaim(
  record: ConnectionRecord,
  claim: Claim,
  finish: (latest: ConnectionRecord) => ConnectionRecord,
  { publishFirst = false } = {},
): Promise<ConnectionRecord | undefined> {
  const ended = await updateConnection<{ before: ConnectionRecord; written: ConnectionRecord } | undefined>(
    record,
    record,
    async (latest) => {
      if (!latest || latest.claim?.token !== claim.token) return { stop: undefined };
      const next = finish(latest);
      const write = publishFirst ? await publishedAhead(next, latest) : next;
      return { write, then: { before: latest, written: write } };
    },
    { attempts: FINISH_ATTEMPTS, whenExhausted: 'throw' },
  );
  if (!ended) return undefined;
  await flushOutbox(ended.written, ended.before);
  return ended.written;
}

/** The fresh values a plan needs, now. */
export function planContext(source: string): PlanContext {
  return { now: new Date(), newId: randomUUID, leaseSeconds: config().DECISION_LEASE_SECONDS, source };
}

function sourceOf(source: DecideOptions['source'], connection: { serviceId: string; endpointId: string }): string {
  return typeof source === 'string' ? source : source(connection);
}

/** A thrown error as the code and message a failure records. */
export function describeError(error: unknown): ActionFailure {
  if (error instanceof Error) return { code: error.name, message: error.message };
  return { code: 'Unknown', message: String(error) };
}

/** Items grouped by a key, each group in the items' order. */
export function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
