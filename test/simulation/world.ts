import type { Scheduler } from 'fast-check';
import type { Claim, ConnectionRecord, ConnectionState, ObservedConnection } from '../../lib/domain/connection';
import type { AccountStatus, OrganizationNode } from '../../lib/domain/organization';
import type { PolicyChangedEvent, PublishedEvent } from '../../lib/domain/outbound-event';
import type { Policy, StoredPolicy } from '../../lib/domain/policy';
import { OrganizationReader } from '../../lib/engine/memberships';
import type { EnginePorts, KnownMembership, LatestPolicyVersion, MembershipCache, OrganizationsApi } from '../../lib/engine/ports';
import { ConflictError } from '../../lib/errors';

/**
 * AWS in memory, for the simulation and the deterministic reproductions: EC2's
 * endpoint connections with their states and Unsuccessful items, DynamoDB's
 * conditional writes, an AWS Organization, the outbound topic. The same
 * semantics as the local stack's simulators, and their faults: throttling and
 * 5xx per call, an endpoint that fails every call naming it, an Organizations
 * outage, a caller that dies after EC2 acted. Every call of a port goes
 * through the scheduler (when there is one), so that fast-check decides the
 * order in which concurrent runs' calls are answered; the world is read when a
 * call is answered.
 */

export const ORGANIZATION_ID = 'o-simulation1';
export const ROOT_ID = 'r-root';
/** How long after an Accept EC2 shows the connection available. */
export const ACCEPT_DELAY_MS = 1000;

export interface Ec2Connection {
  serviceId: string;
  endpointId: string;
  ownerAccountId: string;
  region: string;
  state: ConnectionState;
  createdAt: string;
  acceptedAt?: number;
}

/** An EC2 action that happened: who asked, and the claim it carried out. */
export interface Ec2Action {
  run: Run;
  action: 'accept' | 'reject';
  endpointId: string;
  claim: { claim: Claim; record: ConnectionRecord } | undefined;
  at: number;
}

/** One invocation of a function: its ports, and whether it died. */
export class Run {
  dead = false;
  finished = false;
  /** Settles when the run finished or died. */
  readonly ended: Promise<void>;
  end: () => void = () => undefined;
  /** The claims this run wrote, by endpoint, with the record that carried each. */
  readonly claims = new Map<string, { claim: Claim; record: ConnectionRecord }>();
  private ids = 0;

  constructor(
    readonly id: string,
    readonly kind: string,
    readonly container: Container,
    /** World sequence number and clock when the run started: what it may have read is at or after these. */
    readonly startedSeq: number,
    readonly startedAt: number,
  ) {
    this.ended = new Promise((resolve) => (this.end = resolve));
  }

  /** The invocation dies where it stands: nothing it started answers any more. */
  die(): void {
    this.dead = true;
    this.end();
  }

  newId = (): string => `${this.id}-${++this.ids}`;
}

/** A Lambda container: what it remembers (memberships, OU paths) lives as long as it does. */
export class Container {
  current: Run | undefined;
  readonly reader: OrganizationReader;

  constructor(
    readonly id: number,
    world: World,
  ) {
    const api = organizationsApiOf(world, () => this.current);
    this.reader = new OrganizationReader(api, membershipCacheOf(world, () => this.current), { ttlSeconds: world.ttlSeconds, clock: { now: () => new Date(world.now) } });
  }
}

/** The organization's state at one point: for what was true when. */
export interface OrganizationState {
  seq: number;
  at: number;
  units: ReadonlyMap<string, { name: string; parentId: string }>;
  accounts: ReadonlyMap<string, { parentId: string; status: AccountStatus }>;
}

/** A policy version in force from one point. */
export interface PolicyState {
  seq: number;
  at: number;
  policyId: string;
  policy: Policy;
}

export interface Faults {
  /** The next N EC2 calls answer RequestLimitExceeded, doing nothing. */
  ec2Throttled: number;
  /** The next N EC2 calls answer a 5xx, doing nothing. */
  ec2Failing: number;
  /** Every EC2 call naming one of these endpoints answers 503, doing nothing. */
  poisoned: Set<string>;
  /** Every Organizations call answers AccessDeniedException. */
  organizationsDown: boolean;
  /** The next N publishes fail. */
  publishFailing: number;
  /** The caller of the next Accept or Reject dies once EC2 has acted. */
  crashAfterNextAct: boolean;
}

/** Something the world calls when an EC2 action is carried out or an event published: the invariants. */
export interface Observer {
  acted?(action: Ec2Action): void;
  published?(event: PublishedEvent, run: Run): void;
}

export class World {
  now = Date.parse('2026-12-01T00:00:00Z');
  /** Increases with every change to the world, to order what was true when. */
  seq = 0;
  readonly services = new Map<string, { allowedPrincipals: string[] }>();
  readonly connections = new Map<string, Ec2Connection>();
  readonly actions: Ec2Action[] = [];
  readonly faults: Faults = { ec2Throttled: 0, ec2Failing: 0, poisoned: new Set(), organizationsDown: false, publishFailing: 0, crashAfterNextAct: false };

  readonly records = new Map<string, ConnectionRecord>();
  readonly policies = new Map<string, (LatestPolicyVersion & { valid: true })[]>();
  readonly places = new Map<string, { endpointIds: string[]; version: number }>();
  readonly shared = new Map<string, { principals: string[]; version: number }>();
  readonly membershipCache = new Map<string, { membership: KnownMembership; expiresAt: number }>();

  readonly units = new Map<string, { name: string; parentId: string }>();
  readonly accounts = new Map<string, { parentId: string; status: AccountStatus }>();
  readonly organizationHistory: OrganizationState[] = [];
  /** Each time Organizations answered something about an account: when (seq), to which run, and how (one by one, or in a listing). */
  readonly accountReads: { accountId: string; seq: number; run: Run | undefined; direct: boolean }[] = [];
  readonly policyHistory: PolicyState[] = [];
  readonly published: PublishedEvent[] = [];
  /** Every event a record's outbox ever held, by event id: each one must be published. */
  readonly recordedEvents = new Map<string, { endpointId: string; sequence: number }>();

  private readonly idle: Container[] = [];
  private containers = 0;
  /** Every run started, in order. */
  readonly runs: Run[] = [];
  observer: Observer = {};
  /** Called with each call a port answers, before it is answered: deterministic tests change the world here. */
  beforeCall: ((call: { run: Run; name: string; args: unknown[] }) => void) | undefined;

  constructor(
    readonly options: { scheduler?: Scheduler; ttlSeconds?: number; leaseSeconds?: number } = {},
  ) {
    this.recordOrganization();
  }

  get ttlSeconds(): number {
    return this.options.ttlSeconds ?? 900;
  }

  get leaseSeconds(): number {
    return this.options.leaseSeconds ?? 45;
  }

  /** The functions' timeout: shorter than the lease (DECISION_LEASE_SECONDS), as deployed. */
  get functionTimeoutMs(): number {
    return (this.leaseSeconds - 15) * 1000;
  }

  // --- the world's own moves ---------------------------------------------------

  addService(serviceId: string, allowedPrincipals: string[] = ['*']): void {
    this.services.set(serviceId, { allowedPrincipals });
    this.seq++;
  }

  createEndpoint(serviceId: string, endpointId: string, ownerAccountId: string, region = 'us-east-1'): Ec2Connection {
    const connection: Ec2Connection = { serviceId, endpointId, ownerAccountId, region, state: 'pendingAcceptance', createdAt: new Date(this.now).toISOString() };
    this.connections.set(endpointId, connection);
    this.seq++;
    return connection;
  }

  deleteEndpoint(endpointId: string): void {
    const connection = this.connections.get(endpointId);
    if (connection && connection.state !== 'deleted') connection.state = 'deleted';
    this.seq++;
  }

  /**
   * The clock moves. An invocation still running longer than the function's
   * timeout is killed, as Lambda kills it: the timeout is shorter than a claim's
   * lease, so no holder ever outlives its claim.
   */
  advance(ms: number): void {
    this.now += ms;
    for (const run of this.runs) if (!run.dead && !run.finished && this.now - run.startedAt > this.functionTimeoutMs) run.die();
    for (const connection of this.connections.values()) {
      if (connection.state === 'pending' && connection.acceptedAt !== undefined && this.now - connection.acceptedAt >= ACCEPT_DELAY_MS) connection.state = 'available';
    }
    this.seq++;
  }

  addUnit(unitId: string, name: string, parentId: string): void {
    this.units.set(unitId, { name, parentId });
    this.recordOrganization();
  }

  joinOrganization(accountId: string, parentId: string, status: AccountStatus = 'ACTIVE'): void {
    this.accounts.set(accountId, { parentId, status });
    this.recordOrganization();
  }

  moveAccount(accountId: string, parentId: string): void {
    const account = this.accounts.get(accountId);
    if (account) this.accounts.set(accountId, { ...account, parentId });
    this.recordOrganization();
  }

  setStatus(accountId: string, status: AccountStatus): void {
    const account = this.accounts.get(accountId);
    if (account) this.accounts.set(accountId, { ...account, status });
    this.recordOrganization();
  }

  leaveOrganization(accountId: string): void {
    this.accounts.delete(accountId);
    this.recordOrganization();
  }

  /** Stores a policy version as the API would (also what a test seeds). */
  storePolicy(policyId: string, policy: Policy, outbox: PolicyChangedEvent[] = []): void {
    const versions = this.policies.get(policyId) ?? [];
    const version = { policyId, version: versions.length + 1, policy, createdAt: new Date(this.now).toISOString(), createdBy: 'seed', valid: true as const, outbox };
    this.policies.set(policyId, [...versions, version]);
    this.policyHistory.push({ seq: ++this.seq, at: this.now, policyId, policy });
  }

  private recordOrganization(): void {
    this.organizationHistory.push({ seq: ++this.seq, at: this.now, units: new Map(this.units), accounts: new Map(this.accounts) });
  }

  // --- runs ------------------------------------------------------------------------

  /**
   * Starts an invocation in an idle container (or a new one): `body` gets its
   * ports. A run that dies never finishes, and its container is gone with it.
   */
  start<T>(kind: string, body: (ports: EnginePorts, run: Run) => Promise<T>): { run: Run; done: Promise<T> } {
    const container = this.idle.pop() ?? new Container(++this.containers, this);
    const run = new Run(`r${this.runs.length + 1}`, kind, container, this.seq, this.now);
    container.current = run;
    const done = body(portsOf(this, run), run).finally(() => {
      run.finished = true;
      if (!run.dead) this.idle.push(container);
      run.end();
    });
    this.runs.push(run);
    return { run, done };
  }

  /** Settles once every run started so far has finished or died. */
  async quiet(): Promise<void> {
    for (let seen = 0; seen < this.runs.length; seen = this.runs.length) await Promise.all(this.runs.map((run) => run.ended));
  }

  /** Waits for a port's turn, as the scheduler decides; a dead run's calls never return. */
  async turn(run: Run | undefined, name: string, args: unknown[]): Promise<void> {
    if (this.options.scheduler) await this.options.scheduler.schedule(Promise.resolve(), `${run?.id ?? '?'}:${name}`);
    if (run?.dead) await new Promise<never>(() => undefined);
    if (run) this.beforeCall?.({ run, name, args });
  }

  // --- EC2 ----------------------------------------------------------------------------

  ec2Fault(ids: readonly string[]): Error | undefined {
    if (this.faults.ec2Throttled > 0) {
      this.faults.ec2Throttled--;
      return awsError('RequestLimitExceeded', 'Request limit exceeded.');
    }
    if (this.faults.ec2Failing > 0) {
      this.faults.ec2Failing--;
      return awsError('InternalError', 'An internal error has occurred');
    }
    if (ids.some((id) => this.faults.poisoned.has(id))) return awsError('Unavailable', 'The service is unavailable');
    return undefined;
  }

  describe(query: { serviceId?: string; endpointIds?: string[]; ownerAccountId?: string; states?: ConnectionState[] }): ObservedConnection[] {
    return [...this.connections.values()]
      .filter(
        (c) =>
          (query.serviceId === undefined || c.serviceId === query.serviceId) &&
          (query.endpointIds === undefined || query.endpointIds.includes(c.endpointId)) &&
          (query.ownerAccountId === undefined || c.ownerAccountId === query.ownerAccountId) &&
          (query.states === undefined || query.states.includes(c.state)),
      )
      .map(({ serviceId, endpointId, ownerAccountId, region, state, createdAt }) => ({ serviceId, endpointId, ownerAccountId, region, state, createdAt }));
  }

  /** Accept or Reject as EC2 does them: per item, refused when the connection is not in a state the action applies to. */
  act(run: Run, action: 'accept' | 'reject', serviceId: string, endpointIds: string[]): Map<string, { code: string; message: string }> {
    const failures = new Map<string, { code: string; message: string }>();
    for (const endpointId of new Set(endpointIds)) {
      const connection = this.connections.get(endpointId);
      const from: readonly ConnectionState[] = action === 'accept' ? ['pendingAcceptance'] : ['pendingAcceptance', 'pending', 'available'];
      if (!connection || connection.serviceId !== serviceId) {
        failures.set(endpointId, { code: 'InvalidVpcEndpointId.NotFound', message: `The Vpc Endpoint Id '${endpointId}' does not exist` });
      } else if (!from.includes(connection.state)) {
        failures.set(endpointId, { code: 'InvalidState', message: `Endpoint ${endpointId} is in state ${connection.state}` });
      } else {
        connection.state = action === 'accept' ? 'pending' : 'rejected';
        if (action === 'accept') connection.acceptedAt = this.now;
        this.seq++;
        const done: Ec2Action = { run, action, endpointId, claim: run.claims.get(endpointId), at: this.now };
        this.actions.push(done);
        this.observer.acted?.(done);
      }
    }
    return failures;
  }

  // --- what was true ---------------------------------------------------------------

  /** The organization states in force at some moment from `fromSeq` (or from the clock `fromAt`) until now. */
  organizationStatesSince(from: { seq?: number; at?: number }): OrganizationState[] {
    const history = this.organizationHistory;
    let first = history.findIndex((state) => (from.seq !== undefined ? state.seq > from.seq : state.at >= (from.at ?? 0)));
    if (first === -1) first = history.length;
    return history.slice(Math.max(0, first - 1));
  }

  /** The organization as it was when world sequence `seq` was current. */
  organizationAt(seq: number): OrganizationState {
    let found = this.organizationHistory[0] as OrganizationState;
    for (const state of this.organizationHistory) if (state.seq <= seq) found = state;
    return found;
  }

  /** Notes that Organizations answered about these accounts now. */
  accountsRead(accountIds: Iterable<string>, run: Run | undefined, direct: boolean): void {
    for (const accountId of accountIds) this.accountReads.push({ accountId, seq: this.seq, run, direct });
  }

  /** The versions of a policy id in force at some moment from `fromSeq` until now (undefined: none yet). */
  policyStatesSince(policyId: string, fromSeq: number): (Policy | undefined)[] {
    const history = this.policyHistory.filter((state) => state.policyId === policyId);
    const before = history.filter((state) => state.seq <= fromSeq).at(-1);
    return [before?.policy, ...history.filter((state) => state.seq > fromSeq).map((state) => state.policy)];
  }
}

/** An error as the AWS SDK throws it: the error code is its name. */
export function awsError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** The ports of one run on the world. */
function portsOf(world: World, run: Run): EnginePorts {
  const turn = (name: string, args: unknown[]) => world.turn(run, name, args);
  const ec2 = {
    async describe(query: Parameters<World['describe']>[0]) {
      await turn('ec2.describe', [query]);
      const fault = world.ec2Fault(query.endpointIds ?? []);
      if (fault) throw fault;
      return world.describe(query);
    },
    async act(action: 'accept' | 'reject', serviceId: string, endpointIds: string[]) {
      await turn(`ec2.${action}`, [serviceId, endpointIds]);
      const fault = world.ec2Fault(endpointIds);
      if (fault) throw fault;
      const failures = world.act(run, action, serviceId, endpointIds);
      if (world.faults.crashAfterNextAct) {
        world.faults.crashAfterNextAct = false;
        run.die();
        await new Promise<never>(() => undefined);
      }
      return failures;
    },
    async allowedPrincipals(serviceId: string) {
      await turn('ec2.allowedPrincipals', [serviceId]);
      return [...(world.services.get(serviceId)?.allowedPrincipals ?? [])];
    },
    async modifyAllowedPrincipals(serviceId: string, change: { add: string[]; remove: string[] }) {
      await turn('ec2.modifyAllowedPrincipals', [serviceId, change]);
      const service = world.services.get(serviceId);
      if (!service) throw awsError('InvalidVpcEndpointServiceId.NotFound', serviceId);
      service.allowedPrincipals = [...new Set([...service.allowedPrincipals.filter((p) => !change.remove.includes(p)), ...change.add])];
      world.seq++;
    },
  };
  return {
    ec2: { forService: () => ec2, all: () => [ec2] },
    services: {
      async ids() {
        await turn('services.ids', []);
        return [...world.services.keys()].sort();
      },
      async isManaged(serviceId) {
        await turn('services.isManaged', [serviceId]);
        return world.services.has(serviceId);
      },
    },
    records: {
      async getMany(ids) {
        await turn('records.getMany', [ids]);
        const found = new Map<string, ConnectionRecord>();
        for (const { endpointId } of ids) {
          const record = world.records.get(endpointId);
          if (record) found.set(endpointId, structuredClone(record));
        }
        return found;
      },
      async get(_serviceId, endpointId) {
        await turn('records.get', [endpointId]);
        const record = world.records.get(endpointId);
        return record && structuredClone(record);
      },
      async put(record, expectedVersion) {
        await turn('records.put', [record.endpointId, expectedVersion]);
        const current = world.records.get(record.endpointId);
        if (expectedVersion === undefined ? current !== undefined : current?.version !== expectedVersion) {
          throw new ConflictError(`connection ${record.endpointId} was changed by another writer`);
        }
        const stored = structuredClone(record);
        world.records.set(record.endpointId, stored);
        world.seq++;
        for (const event of stored.outbox ?? []) world.recordedEvents.set(event.eventId, { endpointId: event.endpointId, sequence: event.sequence });
        if (stored.claim?.status === 'acting' && stored.claim.token.startsWith(`${run.id}-`)) run.claims.set(stored.endpointId, { claim: stored.claim, record: stored });
      },
      // The counts by state are not modelled here (they are the table's: test/gateway/stores.test.ts, the e2e bursts).
      async writeCounts() {},
    },
    policies: {
      async latest(policyId) {
        await turn('policies.latest', [policyId]);
        const latest = world.policies.get(policyId)?.at(-1);
        return latest && structuredClone(latest);
      },
      async put(policyId, policy, options): Promise<StoredPolicy> {
        await turn('policies.put', [policyId]);
        const versions = world.policies.get(policyId) ?? [];
        if (versions.length !== options.expectedVersion) throw new ConflictError(`policy ${policyId} was changed by another writer`);
        const stored = { policyId, version: versions.length + 1, policy, createdAt: options.at.toISOString(), createdBy: options.actor };
        world.policies.set(policyId, [...versions, { ...structuredClone(stored), valid: true, outbox: structuredClone(options.outbox) }]);
        world.policyHistory.push({ seq: ++world.seq, at: world.now, policyId, policy });
        return stored;
      },
      async clearOutbox(policyId, version) {
        await turn('policies.clearOutbox', [policyId, version]);
        const stored = world.policies.get(policyId)?.find((v) => v.version === version);
        if (stored) stored.outbox = [];
      },
    },
    places: {
      async get(serviceId, accountId) {
        await turn('places.get', [serviceId, accountId]);
        const places = world.places.get(`${serviceId}/${accountId}`);
        return places ? structuredClone(places) : { endpointIds: [], version: 0 };
      },
      async put(serviceId, accountId, endpointIds, expectedVersion) {
        await turn('places.put', [serviceId, accountId]);
        const key = `${serviceId}/${accountId}`;
        if ((world.places.get(key)?.version ?? 0) !== expectedVersion) throw new ConflictError(`the places of ${accountId} were changed by another writer`);
        world.places.set(key, { endpointIds: [...endpointIds], version: expectedVersion + 1 });
        world.seq++;
      },
    },
    sharing: {
      async get(serviceId) {
        await turn('sharing.get', [serviceId]);
        const shared = world.shared.get(serviceId);
        return shared ? structuredClone(shared) : { principals: [], version: 0 };
      },
      async put(serviceId, principals, expectedVersion) {
        await turn('sharing.put', [serviceId]);
        if ((world.shared.get(serviceId)?.version ?? 0) !== expectedVersion) throw new ConflictError(`the shared principals of ${serviceId} were changed by another run`);
        world.shared.set(serviceId, { principals: [...principals], version: expectedVersion + 1 });
      },
    },
    memberships: run.container.reader,
    publisher: {
      async publish(event) {
        await turn('publisher.publish', [event.eventId]);
        if (world.faults.publishFailing > 0) {
          world.faults.publishFailing--;
          throw awsError('InternalError', 'SNS is unavailable');
        }
        world.published.push(structuredClone(event));
        world.observer.published?.(event, run);
      },
    },
    clock: { now: () => new Date(world.now) },
    newId: run.newId,
    settings: { leaseSeconds: world.leaseSeconds },
  };
}

/** AWS Organizations' read calls on the world's organization, answered for the container's current run. */
function organizationsApiOf(world: World, runOf: () => Run | undefined): OrganizationsApi {
  const call = async <T>(name: string, args: unknown[], answer: () => T): Promise<T> => {
    await world.turn(runOf(), `organizations.${name}`, args);
    if (world.faults.organizationsDown) throw awsError('AccessDeniedException', 'You don’t have permissions to access this resource.');
    return answer();
  };
  const node = (id: string): OrganizationNode => ({ id, name: world.units.get(id)?.name ?? 'Root' });
  return {
    describeOrganization: () => call('describeOrganization', [], () => ({ id: ORGANIZATION_ID })),
    listRoots: () => call('listRoots', [], () => [{ id: ROOT_ID, name: 'Root' }]),
    listUnits: (parentId) => call('listUnits', [parentId], () => [...world.units].filter(([, unit]) => unit.parentId === parentId).map(([id]) => node(id))),
    listAccountsIn: (parentId) =>
      call('listAccountsIn', [parentId], () => {
        const listed = [...world.accounts].filter(([, a]) => a.parentId === parentId);
        world.accountsRead(listed.map(([id]) => id), runOf(), false);
        return listed.map(([id, a]) => ({ id, status: a.status }));
      }),
    listAccounts: () =>
      call('listAccounts', [], () => {
        world.accountsRead(world.accounts.keys(), runOf(), false);
        return [...world.accounts].map(([id, a]) => ({ id, status: a.status }));
      }),
    describeAccount: (accountId) =>
      call('describeAccount', [accountId], () => {
        world.accountsRead([accountId], runOf(), true);
        const account = world.accounts.get(accountId);
        return account && { status: account.status };
      }),
    parentOf: (childId) =>
      call('parentOf', [childId], () => {
        if (!childId.startsWith('ou-')) world.accountsRead([childId], runOf(), true);
        const parent = world.accounts.get(childId)?.parentId ?? world.units.get(childId)?.parentId;
        if (!parent) throw awsError(childId.startsWith('ou-') ? 'ParentNotFoundException' : 'ChildNotFoundException', `${childId} not found`);
        return parent;
      }),
    describeUnit: (unitId) =>
      call('describeUnit', [unitId], () => {
        if (!world.units.has(unitId)) throw awsError('OrganizationalUnitNotFoundException', `${unitId} not found`);
        return node(unitId);
      }),
  };
}

/** The table's membership cache, expiring after the TTL. */
function membershipCacheOf(world: World, runOf: () => Run | undefined): MembershipCache {
  return {
    async get(accountIds) {
      await world.turn(runOf(), 'membershipCache.get', [accountIds]);
      const found = new Map<string, KnownMembership>();
      for (const accountId of accountIds) {
        const cached = world.membershipCache.get(accountId);
        if (cached && cached.expiresAt > world.now) found.set(accountId, structuredClone(cached.membership));
      }
      return found;
    },
    async put(memberships) {
      await world.turn(runOf(), 'membershipCache.put', [memberships.length]);
      for (const membership of memberships) {
        world.membershipCache.set(membership.accountId, { membership: structuredClone(membership), expiresAt: Date.parse(membership.readAt) + world.ttlSeconds * 1000 });
      }
    },
  };
}
