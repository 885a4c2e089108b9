import type { AccountConnections } from '../domain/admission';
import { claimIsLive, type ConnectionRecord, type ObservedConnection } from '../domain/connection';
import { workOf, type Intent, type ServiceWork } from '../domain/intents';
import { recordReflects, type ConnectionEvent } from '../domain/notification';
import type { Membership } from '../domain/organization';
import { DEFAULT_POLICY_ID, isPolicyName, policyInForce, usesOrganization, type Policy, type PolicyInForce, type PolicyVersion } from '../domain/policy';
import type { AccountPlaces, ScopedFailure, ServiceSnapshot, Snapshot } from '../domain/snapshot';
import { describeError, type Failure } from '../errors';
import { logger } from '../logger';
import { inHalves } from './in-halves';
import { EC2_FILTER_VALUES_LIMIT, type EnginePorts, type LatestPolicyVersion, type MembershipReading } from './ports';

/** A candidate policy to plan with in place of the stored one (a policy plan). */
export interface Candidate {
  policyId: string;
  policy: Policy;
}

/** The snapshot, and what the run read that a plan does not need but its caller does. */
export interface SnapshotRead {
  snapshot: Snapshot;
  /** The newest version of each policy read (undefined: none), with its outbox. */
  policies: Map<string, LatestPolicyVersion | undefined>;
  /** The organization as a reconcile run walked it. */
  organization?: MembershipReading;
}

/**
 * Reads everything a run decides from, once, for every service of its intents:
 * the records of the endpoints named (a notification they already reflect is
 * dropped), the policy in force (the default read once) of each service left
 * with something to decide, EC2's connections, the other records, the
 * memberships the policies need and the admission places. What cannot be read
 * is marked unreadable in the snapshot. Never throws.
 */
export async function readSnapshot(intents: readonly Intent[], ports: EnginePorts, candidate?: Candidate): Promise<SnapshotRead> {
  const { services: work, unplaced } = workOf(intents);
  const failures: ScopedFailure[] = [];
  const observedEarly = new Map<string, ObservedConnection>();
  await placeUnplaced(unplaced, work, observedEarly, failures, ports);
  await dropUnmanaged(work, failures, ports);

  const services = new Map<string, ReadingService>();
  for (const serviceWork of work.values()) {
    services.set(serviceWork.serviceId, { work: serviceWork, policy: { kind: 'not-read' }, connections: [], unread: [], records: new Map(), recordsRead: new Set(), places: new Map() });
  }
  // The named endpoints' records first: a notification whose record already shows what it announces needs no policy and no EC2 read.
  const named = [...services.values()].flatMap(({ work: w }) => [...namedIn(w)].map((endpointId) => ({ serviceId: w.serviceId, endpointId })));
  await readRecords(named, services, ports);
  for (const service of services.values()) skipReflected(service.work, service.records, ports.clock.now());
  const policies = await readPolicies([...services.values()], ports, candidate);

  // Services live apart (and, with a fleet, in other accounts and Regions): read concurrently.
  await Promise.all([...services.values()].map((service) => readConnections(service, observedEarly, ports)));
  await readRecords(
    [...services.values()].flatMap((s) => s.connections.filter((c) => !s.recordsRead.has(c.endpointId)).map(({ serviceId, endpointId }) => ({ serviceId, endpointId }))),
    services,
    ports,
  );

  const organization = await readMemberships([...services.values()], ports);
  for (const service of services.values()) await readPlaces(service, ports);

  return {
    snapshot: {
      services: [...services.values()],
      memberships: organization?.memberships ?? new Map(),
      confirmed: organization?.confirmed ?? new Set(),
      failures,
    },
    policies,
    ...(organization?.structure || organization?.error ? { organization } : {}),
  };
}

/** A service's snapshot while it is being read. */
type ReadingService = ServiceSnapshot & {
  records: Map<string, ConnectionRecord>;
  /** The endpoints whose records were read (found or not). */
  recordsRead: Set<string>;
  connections: ObservedConnection[];
  places: Map<string, AccountPlaces | { unreadable: Failure }>;
};

/** Endpoints named without their service: EC2 says whose they are. */
async function placeUnplaced(
  unplaced: Map<string, Set<ConnectionEvent | undefined>>,
  work: Map<string, ServiceWork>,
  observed: Map<string, ObservedConnection>,
  failures: ScopedFailure[],
  ports: EnginePorts,
): Promise<void> {
  for (const ids of chunks([...unplaced.keys()], EC2_FILTER_VALUES_LIMIT)) {
    for (const location of ports.ec2.all()) {
      const { answers, failed } = await inHalves(ids, (part) => location.describe({ endpointIds: part }));
      for (const connection of answers.flat()) observed.set(connection.endpointId, connection);
      for (const [endpointId, failure] of failed) failures.push({ serviceId: '*', endpointId, ...failure });
    }
  }
  for (const [endpointId, events] of unplaced) {
    const connection = observed.get(endpointId);
    if (!connection) continue;
    let serviceWork = work.get(connection.serviceId);
    if (!serviceWork) {
      serviceWork = { serviceId: connection.serviceId, all: false, waiting: false, named: new Map(), decide: false, enforce: false, timeouts: false };
      work.set(connection.serviceId, serviceWork);
    }
    serviceWork.named.set(endpointId, new Set([...(serviceWork.named.get(endpointId) ?? []), ...events]));
    serviceWork.decide = true;
  }
}

/** Services this stage does not manage are dropped: their connections are not ours. */
async function dropUnmanaged(work: Map<string, ServiceWork>, failures: ScopedFailure[], ports: EnginePorts): Promise<void> {
  for (const [serviceId, serviceWork] of work) {
    if (serviceWork.all) continue; // a reconcile run names the managed services itself
    try {
      if (await ports.services.isManaged(serviceId)) continue;
      logger.info('ignoring a notification about an unmanaged service', { serviceId });
    } catch (error) {
      logger.error('could not tell whether a service is managed', { serviceId, error });
      failures.push({ serviceId, ...describeError(error) });
    }
    work.delete(serviceId);
  }
}

/**
 * Each service's policy in force, reading each policy id once: its own, else the named policy its
 * tag names, else the default (read once, when some service needs it or a candidate replaces it).
 */
async function readPolicies(services: ServiceSnapshot[], ports: EnginePorts, candidate: Candidate | undefined): Promise<Map<string, LatestPolicyVersion | undefined>> {
  const read = new Map<string, LatestPolicyVersion | undefined>();
  const failed = new Map<string, Failure>();
  const errors = new Map<string, unknown>();
  // A service whose notifications were all reflected already has nothing left to decide: its policy is not read.
  const deciding = services.filter(({ work }) => (work.decide || work.enforce || work.timeouts) && hasScope(work));
  const readOne = async (policyId: string) => {
    if (read.has(policyId) || failed.has(policyId)) return;
    try {
      read.set(policyId, await ports.policies.latest(policyId));
    } catch (error) {
      failed.set(policyId, describeError(error));
      errors.set(policyId, error);
    }
  };
  for (const { work } of deciding) if (work.serviceId !== DEFAULT_POLICY_ID) await readOne(work.serviceId);
  // The services without a policy of their own: the tag that names theirs, if any.
  const ownless = deciding.filter(({ work }) => !read.get(work.serviceId)).map(({ work }) => work.serviceId);
  let tags = new Map<string, string>();
  // Each service whose tags could not be read (alone: one service EC2 fails on leaves the others read).
  const tagFailures = new Map<string, { failure: Failure; error: unknown }>();
  if (ownless.length && ports.services.policyTagsOf) {
    try {
      const read = await ports.services.policyTagsOf(ownless);
      tags = read.named;
      for (const [serviceId, error] of read.unread) tagFailures.set(serviceId, { failure: describeError(error), error });
    } catch (error) {
      for (const serviceId of ownless) tagFailures.set(serviceId, { failure: describeError(error), error });
    }
  }
  for (const name of new Set(tags.values())) if (isPolicyName(name)) await readOne(name);
  if (candidate && isPolicyName(candidate.policyId)) await readOne(candidate.policyId);
  // The default, once, when a service has neither its own policy nor a tag (or its own could not be read), or a candidate replaces it.
  const defaultNeeded = ownless.some((serviceId) => !tags.has(serviceId) && !tagFailures.has(serviceId)) || candidate?.policyId === DEFAULT_POLICY_ID;
  if (deciding.length && defaultNeeded) await readOne(DEFAULT_POLICY_ID);
  const versionOf = (policyId: string): PolicyVersion | undefined => read.get(policyId);
  for (const service of deciding) {
    const { serviceId } = service.work;
    const tag = tags.get(serviceId);
    const governing = read.get(serviceId) ? serviceId : tag ?? DEFAULT_POLICY_ID;
    const unreadTags = read.get(serviceId) ? undefined : tagFailures.get(serviceId);
    const failure = failed.get(serviceId) ?? unreadTags?.failure ?? (read.get(serviceId) ? undefined : failed.get(governing));
    if (failure) {
      // Fail closed: no decision on a policy that could not be read.
      logger.error('could not read the policy of a service; its connections are left undecided', { serviceId, ...failure });
      const error = failed.has(serviceId) ? errors.get(serviceId) : unreadTags ? unreadTags.error : errors.get(governing);
      service.unread.push({ failure, from: !failed.has(serviceId) && unreadTags ? 'ec2' : 'table', error });
      continue;
    }
    const inForce = policyInForce(serviceId, versionOf, tag);
    service.policy = inForce;
    if (candidate && governs(candidate.policyId, serviceId, inForce, tag)) {
      service.today = inForce;
      const base = read.get(candidate.policyId);
      service.policy = {
        kind: 'policy',
        stored: { policyId: candidate.policyId, version: (base?.version ?? 0) + 1, policy: candidate.policy, createdAt: ports.clock.now().toISOString(), createdBy: 'plan' },
      };
    }
  }
  return read;
}

/** Whether saving `policyId` would change what governs a service now governed by `inForce` (its tag naming `tag`). */
function governs(policyId: string, serviceId: string, inForce: PolicyInForce, tag: string | undefined): boolean {
  if (policyId === serviceId) return true;
  const byOwn = inForce.kind === 'policy' ? inForce.stored.policyId === serviceId : inForce.kind === 'unreadable' && inForce.policyId === serviceId;
  if (byOwn) return false;
  if (isPolicyName(policyId)) return tag === policyId;
  if (policyId !== DEFAULT_POLICY_ID) return false;
  return tag === undefined;
}

/** Whether the work reads any connection: every one, the waiting ones, or some named ones. */
function hasScope(work: ServiceWork): boolean {
  return work.all || work.waiting || namedIn(work).size > 0;
}

function namedIn(work: ServiceWork): Set<string> {
  const ids = new Set(work.named.keys());
  if (work.approve) ids.add(work.approve.endpointId);
  return ids;
}

/** Records in one batch read (100 keys a request); a failed read fails the endpoints it was for. */
async function readRecords(
  ids: { serviceId: string; endpointId: string }[],
  services: Map<string, Pick<ReadingService, 'records' | 'recordsRead' | 'unread'>>,
  ports: EnginePorts,
): Promise<void> {
  if (!ids.length) return;
  try {
    const records = await ports.records.getMany(ids);
    for (const { serviceId, endpointId } of ids) {
      const record = records.get(endpointId);
      const service = services.get(serviceId);
      service?.recordsRead.add(endpointId);
      if (record) service?.records.set(endpointId, record);
    }
  } catch (error) {
    logger.error('could not read the records of a batch', { error });
    const failure = describeError(error);
    for (const [serviceId, service] of services) {
      const endpointIds = ids.filter((id) => id.serviceId === serviceId).map(({ endpointId }) => endpointId);
      if (endpointIds.length) service.unread.push({ endpointIds, failure, from: 'table', error });
    }
  }
}

/** Drops what the records already show: copies from an earlier batch, the Accept that follows our own accept. */
function skipReflected(work: ServiceWork, records: ReadonlyMap<string, ConnectionRecord>, now: Date): void {
  for (const [endpointId, events] of work.named) {
    if ([...events].every((event) => event && recordReflects(records.get(endpointId), event, now))) work.named.delete(endpointId);
  }
}

/** EC2's connections in the service's scope: every one, the waiting ones, and the named ones. */
async function readConnections(
  service: ServiceSnapshot & { connections: ObservedConnection[] },
  observedEarly: ReadonlyMap<string, ObservedConnection>,
  ports: EnginePorts,
): Promise<void> {
  const { work } = service;
  if (service.unread.some((unread) => !unread.endpointIds)) return;
  const unreadable = new Set(service.unread.flatMap((unread) => unread.endpointIds ?? []));
  const ec2 = ports.ec2.forService(work.serviceId);
  const found = new Map<string, ObservedConnection>();
  const whole = work.all ? {} : work.waiting ? { states: ['pendingAcceptance' as const] } : undefined;
  if (whole) {
    try {
      for (const connection of await ec2.describe({ serviceId: work.serviceId, ...whole })) found.set(connection.endpointId, connection);
    } catch (error) {
      logger.error("could not read a service's connections from EC2", { serviceId: work.serviceId, error });
      service.unread.push({ failure: describeError(error), from: 'ec2', error });
      return;
    }
  }
  const named = [...namedIn(work)].filter((endpointId) => !found.has(endpointId) && !unreadable.has(endpointId));
  const toDescribe: string[] = [];
  for (const endpointId of named) {
    const early = observedEarly.get(endpointId);
    if (early) found.set(endpointId, early);
    else if (!work.all) toDescribe.push(endpointId);
  }
  for (const ids of chunks(toDescribe, EC2_FILTER_VALUES_LIMIT)) {
    const { answers, failed } = await inHalves(ids, (part) => ec2.describe({ serviceId: work.serviceId, endpointIds: part }));
    for (const connection of answers.flat()) found.set(connection.endpointId, connection);
    for (const [endpointId, failure] of failed) {
      logger.error('could not read a connection from EC2; its notifications go back to the queue', { serviceId: work.serviceId, endpointId, ...failure });
      service.unread.push({ endpointIds: [endpointId], failure, from: 'ec2' });
    }
  }
  service.connections = [...found.values()];
}

/**
 * The memberships the services' policies need: the owners of waiting requests
 * they decide and, when they enforce, of admitted connections. A reconcile run
 * walks the organization; anything else reads each account from the caches or
 * on its own.
 */
async function readMemberships(services: ServiceSnapshot[], ports: EnginePorts): Promise<MembershipReading | undefined> {
  const accounts = new Set<string>();
  let walk = false;
  for (const service of services) {
    if (service.policy.kind !== 'policy' || !usesOrganization(service.policy.stored.policy)) continue;
    walk ||= service.work.all;
    for (const connection of service.connections) {
      if ((connection.state === 'pendingAcceptance' && service.work.decide) || (connection.state === 'available' && service.work.enforce)) {
        accounts.add(connection.ownerAccountId);
      }
    }
  }
  if (!walk && !accounts.size) return undefined;
  return walk ? ports.memberships.walked([...accounts]) : ports.memberships.cached([...accounts]);
}

/** Under maxEndpointsPerAccount: each waiting request's account, its reserved places and its connections in EC2. */
async function readPlaces(service: ServiceSnapshot & { places: Map<string, AccountPlaces | { unreadable: Failure }> }, ports: EnginePorts): Promise<void> {
  const { policy, work } = service;
  if (policy.kind !== 'policy' || policy.stored.policy.maxEndpointsPerAccount === undefined || !work.decide) return;
  const owners = new Set(
    service.connections
      .filter((c) => c.state === 'pendingAcceptance' && !claimIsLive(service.records.get(c.endpointId)?.claim, ports.clock.now()))
      .map((c) => c.ownerAccountId),
  );
  for (const accountId of owners) {
    try {
      const ofAccount = work.all
        ? service.connections.filter((c) => c.ownerAccountId === accountId)
        : await ports.ec2.forService(work.serviceId).describe({ serviceId: work.serviceId, ownerAccountId: accountId });
      const ec2: AccountConnections = new Map(ofAccount.map((c) => [c.endpointId, c.state]));
      const { endpointIds, version } = await ports.places.get(work.serviceId, accountId);
      service.places.set(accountId, { reserved: endpointIds, version, ec2 });
    } catch (error) {
      service.places.set(accountId, { unreadable: describeError(error) });
    }
  }
}

/** Memberships a plan needs read one by one before it revokes on them: added to the snapshot as confirmed. */
export function withConfirmed(snapshot: Snapshot, reading: MembershipReading): Snapshot {
  const memberships = new Map<string, Membership>(snapshot.memberships);
  for (const [accountId, membership] of reading.memberships) memberships.set(accountId, membership);
  return { ...snapshot, memberships, confirmed: new Set([...snapshot.confirmed, ...reading.confirmed]) };
}

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}
