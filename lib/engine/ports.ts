import type { ConnectionRecord, ConnectionState, ObservedConnection } from '../domain/connection';
import type { AccountStatus, Membership, OrganizationNode, OrganizationStructure } from '../domain/organization';
import type { PolicyChangedEvent, PublishedEvent } from '../domain/outbound-event';
import type { Policy, PolicyVersion, StoredPolicy } from '../domain/policy';
import type { Failure } from '../errors';
import type { Spoke } from '../domain/spokes';

/**
 * The ports: what the engine reads and changes, as interfaces. The gateways in
 * lib/aws implement them against AWS; the simulation (test/simulation)
 * implements them in memory with the same semantics (conditional writes, EC2's
 * states and Unsuccessful items, throttling, 5xx).
 */

/** The most endpoint ids EC2 takes in one filter: endpoints read per Describe call. */
export const EC2_FILTER_VALUES_LIMIT = 200;
/** The most endpoint ids sent in one Accept or Reject call. */
export const EC2_ACTION_BATCH_SIZE = 100;

export interface ConnectionQuery {
  serviceId?: string;
  /** At most EC2_FILTER_VALUES_LIMIT. */
  endpointIds?: string[];
  ownerAccountId?: string;
  states?: ConnectionState[];
}

/**
 * EC2's endpoint connections where a service lives: one account and Region,
 * with its own credentials and rate limits.
 */
export interface Ec2Connections {
  /** The connections a query matches, every page. */
  describe(query: ConnectionQuery): Promise<ObservedConnection[]>;
  /**
   * One AcceptVpcEndpointConnections or RejectVpcEndpointConnections call for at
   * most EC2_ACTION_BATCH_SIZE endpoints of one service: answers the items EC2
   * refused (its Unsuccessful list); throws when the call itself fails.
   */
  act(action: 'accept' | 'reject', serviceId: string, endpointIds: string[]): Promise<Map<string, Failure>>;
  /** The principals allowed to create an endpoint to a service ('*' or IAM ARNs), every page. */
  allowedPrincipals(serviceId: string): Promise<string[]>;
  /** Adds and removes allowed principals; throws when EC2 refuses. */
  modifyAllowedPrincipals(serviceId: string, change: { add: string[]; remove: string[] }): Promise<void>;
  /** The services' connection notifications in this account and Region (DescribeVpcEndpointConnectionNotifications, every page). */
  connectionNotifications?(): Promise<ConnectionNotificationConfig[]>;
  /** CreateVpcEndpointConnectionNotification: a service's events to a topic; throws when EC2 refuses. */
  createConnectionNotification?(serviceId: string, topicArn: string, events: readonly string[]): Promise<void>;
}

/** Where PrivateLink publishes a service's connection events. */
export interface ConnectionNotificationConfig {
  serviceId: string;
  topicArn: string;
  events: string[];
}

/** Where EC2 is reached: per service (a service lives in one account and Region). */
export interface Ec2Locations {
  forService(serviceId: string): Ec2Connections;
  /** Every location, to find endpoints named without their service. */
  all(): Ec2Connections[];
}

/** Which endpoint services this stage manages, and, in a fleet, where each lives. */
export interface ManagedServices {
  /** `fresh`: list the spokes now rather than use a recent listing (a reconcile run). */
  ids(options?: { fresh?: boolean }): Promise<string[]>;
  isManaged(serviceId: string): Promise<boolean>;
  /** Where a managed service lives, once ids or isManaged found it (undefined: not known). */
  locationOf?(serviceId: string): Spoke | undefined;
  /** Every spoke (the hub's own first), and why it could not be listed the last time it failed. */
  spokes?(): SpokeStatus[];
  /** The named policy each service's vpce-gatekeeper:policy tag names, and the services whose tags could not be read. */
  policyTagsOf?(serviceIds: readonly string[]): Promise<PolicyTags>;
  /** The services among these EC2 describes without the vpce-gatekeeper:managed=true tag, on which the stack's roles may not act. */
  untaggedOf?(serviceIds: readonly string[]): Promise<string[]>;
}

/** Each service's vpce-gatekeeper:policy tag (`named`; a service without the tag is absent), and the services whose tags could not be read, with the error. */
export interface PolicyTags {
  named: Map<string, string>;
  unread: Map<string, unknown>;
}

/** A spoke, and what reaching it last failed with. */
export interface SpokeStatus {
  spoke: Spoke;
  failure?: Failure;
}

/** The connections' records: read in batches, written conditionally on the version read. */
export interface ConnectionRecords {
  /** By endpoint id; a connection with no record is absent. */
  getMany(ids: readonly { serviceId: string; endpointId: string }[]): Promise<Map<string, ConnectionRecord>>;
  get(serviceId: string, endpointId: string): Promise<ConnectionRecord | undefined>;
  /** Writes if the table still holds `expectedVersion` (undefined: no record yet); ConflictError otherwise. Its change of state is counted by the next writeCounts. */
  put(record: ConnectionRecord, expectedVersion: number | undefined): Promise<void>;
  /** Writes the changes of state the puts made so far to the services' counts: one write per service. */
  writeCounts(): Promise<void>;
}

/** The newest version of a policy with the policy-changed events not yet known to be published. */
export type LatestPolicyVersion = PolicyVersion & { outbox: PolicyChangedEvent[] };

/** The policies' versions. */
export interface Policies {
  latest(policyId: string): Promise<LatestPolicyVersion | undefined>;
  /** Writes the next version if `expectedVersion` (0: none yet) is still the newest; ConflictError otherwise. */
  put(
    policyId: string,
    policy: Policy,
    options: { actor: string; expectedVersion: number; at: Date; outbox: PolicyChangedEvent[] },
  ): Promise<StoredPolicy>;
  /** Empties a version's outbox once its events are published, if it still holds them. */
  clearOutbox(policyId: string, version: number): Promise<void>;
}

/** The endpoints reserved against an account's maxEndpointsPerAccount on one service. */
export interface AdmissionPlaces {
  endpointIds: string[];
  /** 0: none written yet. */
  version: number;
}

export interface AdmissionPlacesStore {
  get(serviceId: string, accountId: string): Promise<AdmissionPlaces>;
  /** Writes if the places are still at `expectedVersion`; ConflictError otherwise. */
  put(serviceId: string, accountId: string, endpointIds: string[], expectedVersion: number): Promise<void>;
}

/** What the reconciler added to services' allowed principals (sharing), so that it removes only its own. */
export interface SharedPrincipals {
  get(serviceId: string): Promise<{ principals: string[]; version: number }>;
  /** Writes if still at `expectedVersion` (0: none yet); ConflictError otherwise. */
  put(serviceId: string, principals: string[], expectedVersion: number): Promise<void>;
}

/** AWS Organizations' read calls, each as the API answers it (every page). Errors are thrown as the API throws them. */
export interface OrganizationsApi {
  describeOrganization(): Promise<{ id: string }>;
  listRoots(): Promise<OrganizationNode[]>;
  /** ListOrganizationalUnitsForParent. */
  listUnits(parentId: string): Promise<OrganizationNode[]>;
  /** ListAccountsForParent. */
  listAccountsIn(parentId: string): Promise<{ id: string; status: AccountStatus }[]>;
  /** ListAccounts: every account of the organization, flat. */
  listAccounts(): Promise<{ id: string; status: AccountStatus }[]>;
  /** DescribeAccount; undefined when Organizations answers AccountNotFoundException. */
  describeAccount(accountId: string): Promise<{ status: AccountStatus } | undefined>;
  /** ListParents: the one parent of an account or OU. */
  parentOf(childId: string): Promise<string>;
  /** DescribeOrganizationalUnit. */
  describeUnit(unitId: string): Promise<OrganizationNode>;
}

/** Memberships read earlier, shared by the functions until they are older than the cache TTL. */
export interface MembershipCache {
  get(accountIds: readonly string[]): Promise<Map<string, KnownMembership>>;
  put(memberships: readonly KnownMembership[]): Promise<void>;
}

export type KnownMembership = Exclude<Membership, { kind: 'unreadable' }>;

/** What one reading of the organization found. */
export interface MembershipReading {
  memberships: Map<string, Membership>;
  /** The accounts read one by one by this reading: fresh facts, which a revocation may rest on. */
  confirmed: Set<string>;
  /** A walk's verified structure, with the accounts read one by one added (sharing lists every account from it). */
  structure?: OrganizationStructure;
  /** Set when the organization could not be walked: the error's name. */
  error?: string;
}

/**
 * Where accounts sit in the organization, as the engine asks it (implemented by
 * OrganizationReader in lib/engine/memberships.ts, over OrganizationsApi and
 * MembershipCache): never concluded from an account's absence.
 */
export interface OrganizationMemberships {
  /** For deciding between runs: the caches, else each account read on its own. */
  cached(accountIds: readonly string[]): Promise<MembershipReading>;
  /** For a reconcile run: a fresh walk checked against ListAccounts, and the accounts they disagree on read on their own. */
  walked(accountIds: readonly string[]): Promise<MembershipReading>;
  /** Each account read on its own, now. */
  direct(accountIds: readonly string[]): Promise<MembershipReading>;
  /** Forgets what is remembered (the local stack's reset). */
  forget(): void;
}

/** The outbound topic. */
export interface Publisher {
  publish(event: PublishedEvent): Promise<void>;
}

export interface Clock {
  now(): Date;
}

/** Everything the engine reaches. */
export interface EnginePorts {
  ec2: Ec2Locations;
  services: ManagedServices;
  records: ConnectionRecords;
  policies: Policies;
  places: AdmissionPlacesStore;
  sharing: SharedPrincipals;
  memberships: OrganizationMemberships;
  publisher: Publisher;
  clock: Clock;
  newId: () => string;
  settings: {
    /** How long a claim holds its connection (DECISION_LEASE_SECONDS). */
    leaseSeconds: number;
  };
}
