import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../lib/errors';
import type { Spoke } from '../../lib/domain/spokes';
import { ec2Id } from './ids';
import { LOCAL_LOCATION, sameLocation } from './locations';

/** The states of an endpoint connection, spelled as EC2 spells them. */
export type EndpointState = 'pendingAcceptance' | 'pending' | 'available' | 'rejected' | 'deleted';

/** Where a service lives: the provider's account and the service's Region. */
export type ServiceLocation = Spoke;

export interface EndpointService {
  serviceId: string;
  /** The provider's account and the service's Region: only callers there see it. */
  accountId: string;
  region: string;
  acceptanceRequired: boolean;
  createdAt: Date;
  /** Who may find the service and create an endpoint to it: '*', or IAM ARNs (an account's root admits the whole account). */
  allowedPrincipals: AllowedPrincipal[];
  /** The service's tags, key to value, as DescribeVpcEndpointServiceConfigurations shows them. */
  tags: Record<string, string>;
  /** Where PrivateLink publishes the service's connection events (CreateVpcEndpointConnectionNotification). */
  connectionNotifications: ConnectionNotificationConfig[];
}

export type ConnectionEvent = 'Connect' | 'Accept' | 'Reject' | 'Delete';
export const CONNECTION_EVENTS: readonly ConnectionEvent[] = ['Accept', 'Connect', 'Delete', 'Reject'];

/** A connection notification: the topic a service's connection events are published to. */
export interface ConnectionNotificationConfig {
  connectionNotificationId: string;
  serviceId: string;
  topicArn: string;
  events: ConnectionEvent[];
}

export interface AllowedPrincipal {
  principal: string;
  principalType: 'All' | 'Account' | 'Role' | 'User';
  servicePermissionId: string;
}

/** The principals EC2 accepts in a service's permissions: '*' or an IAM account root, role or user. */
const PRINCIPAL = /^(\*|arn:aws:iam::\d{12}:(root|role\/[\w+=,.@/-]+|user\/[\w+=,.@/-]+))$/;

export interface EndpointConnection {
  serviceId: string;
  vpcEndpointId: string;
  vpcEndpointConnectionId: string;
  ownerAccountId: string;
  region: string;
  state: EndpointState;
  createdAt: Date;
}

/** The body of an endpoint connection notification, as AWS publishes it to SNS. */
export interface ConnectionNotification {
  eventType: ConnectionEvent;
  serviceId: string;
  vpcEndpointId: string;
  vpcEndpointOwner: string;
  vpcEndpointState: EndpointState;
  eventTime: string;
}

/** One endpoint that Accept or Reject could not act on. */
export interface ItemFailure {
  resourceId: string;
  code: 'InvalidState' | 'InvalidVpcEndpointId.NotFound';
  message: string;
}

export interface SimulatorOptions {
  /** How long an accepted connection stays pending before it is available. */
  acceptDelayMs: number;
  /** Called for every state change, once per connection notification of the service that asks for its event. */
  notify: (topicArn: string, notification: ConnectionNotification) => void;
}

const ACCEPTABLE: ReadonlySet<EndpointState> = new Set(['pendingAcceptance']);
const REJECTABLE: ReadonlySet<EndpointState> = new Set(['pendingAcceptance', 'pending', 'available']);

/**
 * The provider side of PrivateLink: endpoint services, the consumers' endpoint
 * connections to them, and the state machine of the PrivateLink guide.
 */
export class PrivateLinkSimulator {
  private services = new Map<string, EndpointService>();
  private connections = new Map<string, EndpointConnection>();
  private timers = new Set<NodeJS.Timeout>();
  // Bumped on reset, so that a timer that fires late finds it belongs to the past.
  private generation = 0;

  constructor(private readonly options: SimulatorOptions) {}

  /**
   * Creates an endpoint service, in the local account and Region unless `location` says otherwise;
   * `serviceId` may be fixed by the caller, and `notificationTopicArn` gives it a connection
   * notification for every event.
   */
  createService(input: {
    serviceId?: string;
    acceptanceRequired: boolean;
    allowedPrincipals?: string[];
    tags?: Record<string, string>;
    location?: ServiceLocation;
    notificationTopicArn?: string;
  }): EndpointService {
    const serviceId = input.serviceId ?? ec2Id('vpce-svc-');
    if (this.services.has(serviceId)) throw new ConflictError(`endpoint service ${serviceId} already exists`);
    const principals = input.allowedPrincipals ?? ['*'];
    const invalid = principals.find((principal) => !PRINCIPAL.test(principal));
    if (invalid !== undefined) throw new ValidationError(`allowedPrincipals: '${invalid}' is neither '*' nor an IAM account root, role or user ARN`);
    const { accountId, region } = input.location ?? LOCAL_LOCATION;
    const service: EndpointService = {
      serviceId,
      accountId,
      region,
      acceptanceRequired: input.acceptanceRequired,
      createdAt: new Date(),
      allowedPrincipals: [],
      tags: { ...input.tags },
      connectionNotifications: [],
    };
    this.services.set(serviceId, service);
    this.modifyPermissions(serviceId, { add: principals, remove: [] });
    if (input.notificationTopicArn) this.createConnectionNotification(serviceId, input.notificationTopicArn, CONNECTION_EVENTS);
    return copyService(service);
  }

  /** A service by id; with `location`, only if it lives there (EC2 shows a caller its own account's services in its Region). */
  findService(serviceId: string, location?: ServiceLocation): EndpointService | undefined {
    const service = this.services.get(serviceId);
    return service && (!location || sameLocation(service, location)) ? copyService(service) : undefined;
  }

  /** Every service, or those living in `location`. */
  listServices(location?: ServiceLocation): EndpointService[] {
    return [...this.services.values()].filter((service) => !location || sameLocation(service, location)).map(copyService);
  }

  /** CreateVpcEndpointConnectionNotification: the service's events (some of them) to a topic. */
  createConnectionNotification(serviceId: string, topicArn: string, events: readonly ConnectionEvent[]): ConnectionNotificationConfig {
    const service = this.requireService(serviceId);
    const config: ConnectionNotificationConfig = { connectionNotificationId: ec2Id('vpce-nfn-'), serviceId, topicArn, events: [...new Set(events)].sort() };
    service.connectionNotifications.push(config);
    return { ...config, events: [...config.events] };
  }

  /** The connection notifications of every service, or of the services living in `location`. */
  listConnectionNotifications(location?: ServiceLocation): ConnectionNotificationConfig[] {
    return this.listServices(location).flatMap((service) => service.connectionNotifications);
  }

  /**
   * ModifyVpcEndpointServicePermissions: adds and removes allowed principals.
   * Adding one that is there already and removing one that is not change nothing.
   * Returns the principals added. Refuses an invalid principal before changing anything.
   */
  modifyPermissions(serviceId: string, change: { add: readonly string[]; remove: readonly string[] }): AllowedPrincipal[] {
    const service = this.requireService(serviceId);
    const invalid = [...change.add, ...change.remove].find((principal) => !PRINCIPAL.test(principal));
    if (invalid !== undefined) throw new InvalidPrincipalError(invalid);
    const removed = new Set(change.remove);
    service.allowedPrincipals = service.allowedPrincipals.filter(({ principal }) => !removed.has(principal));
    const added: AllowedPrincipal[] = [];
    for (const principal of new Set(change.add)) {
      const existing = service.allowedPrincipals.find((allowed) => allowed.principal === principal);
      if (existing) {
        added.push({ ...existing });
        continue;
      }
      const allowed: AllowedPrincipal = { principal, principalType: principalTypeOf(principal), servicePermissionId: ec2Id('vpce-svc-perm-') };
      service.allowedPrincipals.push(allowed);
      added.push({ ...allowed });
    }
    return added;
  }

  /** Whether an account may create an endpoint to the service: '*', or a principal of that account. */
  admits(service: EndpointService, accountId: string): boolean {
    return service.allowedPrincipals.some(({ principal }) => principal === '*' || principal.startsWith(`arn:aws:iam::${accountId}:`));
  }

  /** A consumer creates an interface endpoint to the service (in `region`: the service's own unless told). */
  createEndpoint(serviceId: string, consumer: { ownerAccountId: string; region?: string }): EndpointConnection {
    const service = this.requireService(serviceId);
    if (!this.admits(service, consumer.ownerAccountId)) {
      // EC2 does not show a service to an account it does not allow: to that account, it does not exist.
      throw new ForbiddenError(
        `The Vpc Endpoint Service 'com.amazonaws.vpce.${service.region}.${serviceId}' does not exist (account ${consumer.ownerAccountId} is not among its allowed principals)`,
      );
    }
    const connection: EndpointConnection = {
      serviceId,
      vpcEndpointId: ec2Id('vpce-'),
      vpcEndpointConnectionId: ec2Id('vpce-con-'),
      ownerAccountId: consumer.ownerAccountId,
      region: consumer.region ?? service.region,
      state: service.acceptanceRequired ? 'pendingAcceptance' : 'pending',
      createdAt: new Date(),
    };
    this.connections.set(connection.vpcEndpointId, connection);
    if (connection.state === 'pending') this.scheduleAvailable(connection);
    this.publish('Connect', connection);
    return { ...connection };
  }

  /** The consumer deletes its endpoint; the connection stays, described as deleted. */
  deleteEndpoint(serviceId: string, vpcEndpointId: string): EndpointConnection {
    const connection = this.requireConnection(serviceId, vpcEndpointId);
    if (connection.state === 'deleted') throw new ConflictError(`endpoint ${vpcEndpointId} is already deleted`);
    connection.state = 'deleted';
    this.publish('Delete', connection);
    return { ...connection };
  }

  /** The connections of one service, oldest first. */
  endpointsOf(serviceId: string): EndpointConnection[] {
    this.requireService(serviceId);
    return this.listConnections().filter((connection) => connection.serviceId === serviceId);
  }

  /** Every connection of every service (of the services living in `location`), oldest first. */
  listConnections(location?: ServiceLocation): EndpointConnection[] {
    const found: EndpointConnection[] = [];
    for (const connection of this.connections.values()) {
      const service = location && this.services.get(connection.serviceId);
      if (!location || (service && sameLocation(service, location))) found.push({ ...connection });
    }
    return found;
  }

  /** AcceptVpcEndpointConnections: only a connection pending acceptance can be accepted. */
  accept(serviceId: string, vpcEndpointIds: readonly string[]): ItemFailure[] {
    return this.act(serviceId, vpcEndpointIds, ACCEPTABLE, (connection) => {
      connection.state = 'pending';
      this.scheduleAvailable(connection);
      this.publish('Accept', connection);
    });
  }

  /** RejectVpcEndpointConnections: allowed while pending acceptance, pending or available. */
  reject(serviceId: string, vpcEndpointIds: readonly string[]): ItemFailure[] {
    return this.act(serviceId, vpcEndpointIds, REJECTABLE, (connection) => {
      connection.state = 'rejected';
      this.publish('Reject', connection);
    });
  }

  /** Forgets every service and connection and cancels pending transitions. */
  reset(): void {
    this.generation += 1;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.services.clear();
    this.connections.clear();
  }

  private act(
    serviceId: string,
    vpcEndpointIds: readonly string[],
    allowedFrom: ReadonlySet<EndpointState>,
    transition: (connection: EndpointConnection) => void,
  ): ItemFailure[] {
    this.requireService(serviceId);
    const failures: ItemFailure[] = [];
    for (const vpcEndpointId of new Set(vpcEndpointIds)) {
      const connection = this.connections.get(vpcEndpointId);
      if (!connection || connection.serviceId !== serviceId) {
        failures.push({
          resourceId: vpcEndpointId,
          code: 'InvalidVpcEndpointId.NotFound',
          message: `The Vpc Endpoint Id '${vpcEndpointId}' does not exist`,
        });
      } else if (!allowedFrom.has(connection.state)) {
        failures.push({
          resourceId: vpcEndpointId,
          code: 'InvalidState',
          message: `Endpoint ${vpcEndpointId} is in state ${connection.state}`,
        });
      } else {
        transition(connection);
      }
    }
    return failures;
  }

  private scheduleAvailable(connection: EndpointConnection): void {
    const generation = this.generation;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (generation === this.generation && connection.state === 'pending') connection.state = 'available';
    }, this.options.acceptDelayMs);
    this.timers.add(timer);
  }

  private publish(eventType: ConnectionEvent, connection: EndpointConnection): void {
    const service = this.requireService(connection.serviceId);
    const notification: ConnectionNotification = {
      eventType,
      serviceId: connection.serviceId,
      vpcEndpointId: connection.vpcEndpointId,
      vpcEndpointOwner: connection.ownerAccountId,
      vpcEndpointState: connection.state,
      eventTime: new Date().toISOString(),
    };
    for (const { topicArn, events } of service.connectionNotifications) {
      if (events.includes(eventType)) this.options.notify(topicArn, notification);
    }
  }

  private requireService(serviceId: string): EndpointService {
    const service = this.services.get(serviceId);
    if (!service) throw new NotFoundError(`endpoint service ${serviceId} does not exist`);
    return service;
  }

  private requireConnection(serviceId: string, vpcEndpointId: string): EndpointConnection {
    this.requireService(serviceId);
    const connection = this.connections.get(vpcEndpointId);
    if (!connection || connection.serviceId !== serviceId) {
      throw new NotFoundError(`endpoint ${vpcEndpointId} of service ${serviceId} does not exist`);
    }
    return connection;
  }
}

/** A principal that is neither '*' nor an IAM ARN EC2 accepts in a service's permissions. */
export class InvalidPrincipalError extends ValidationError {
  constructor(readonly principal: string) {
    super(`Invalid principal ${principal}`);
  }
}

function principalTypeOf(principal: string): AllowedPrincipal['principalType'] {
  if (principal === '*') return 'All';
  if (principal.endsWith(':root')) return 'Account';
  return principal.includes(':role/') ? 'Role' : 'User';
}

function copyService(service: EndpointService): EndpointService {
  return {
    ...service,
    allowedPrincipals: service.allowedPrincipals.map((allowed) => ({ ...allowed })),
    tags: { ...service.tags },
    connectionNotifications: service.connectionNotifications.map((config) => ({ ...config, events: [...config.events] })),
  };
}
