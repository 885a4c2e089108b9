import type { AccountConnections } from './admission';
import type { ConnectionRecord, ObservedConnection } from './connection';
import type { ServiceWork } from './intents';
import type { Membership } from './organization';
import type { PolicyInForce } from './policy';
import type { Failure } from '../errors';

/**
 * Everything a run decides from, read once at its start through the ports.
 * What could not be read is marked so, and nothing is decided from it.
 */
export interface Snapshot {
  services: ServiceSnapshot[];
  /** Accounts' places in the organization, for the services whose policy has entries by OU or organization. */
  memberships: ReadonlyMap<string, Membership>;
  /** The accounts read one by one during this run: what a revocation on organization facts needs. */
  confirmed: ReadonlySet<string>;
  /** What could not be read before any service was known: endpoints named without their service, whether a service is managed. */
  failures: ScopedFailure[];
}

/** Something that could not be read or decided, for one endpoint or (no endpointId) a whole service ('*': no service known). */
export type ScopedFailure = Failure & { serviceId: string; endpointId?: string };

/** One service as the run found it. */
export interface ServiceSnapshot {
  work: ServiceWork;
  /** What governs it (in a policy plan: the candidate). Not read for an approver's decision alone. */
  policy: PolicyInForce | { kind: 'not-read' };
  /** In a policy plan: what governs it today, for what the plan compares with. */
  today?: PolicyInForce;
  /** EC2's connections in the run's scope of the service. */
  connections: ObservedConnection[];
  /** What could not be read, and from where: for some endpoints, or for all of the service (no endpointIds). */
  unread: { endpointIds?: string[]; failure: Failure; from: 'ec2' | 'table'; error?: unknown }[];
  /** The table's records of the connections, by endpoint id (absent: none). */
  records: ReadonlyMap<string, ConnectionRecord>;
  /** Under maxEndpointsPerAccount, per owner account of a waiting request: its reserved places, and its connections in EC2. */
  places: ReadonlyMap<string, AccountPlaces | { unreadable: Failure }>;
}

/** An account's places on a service: the endpoints reserved for accepts (the table) and what EC2 shows admitted. */
export interface AccountPlaces {
  reserved: readonly string[];
  version: number;
  ec2: AccountConnections;
}
