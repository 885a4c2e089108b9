import {
  AcceptVpcEndpointConnectionsCommand,
  CreateVpcEndpointConnectionNotificationCommand,
  paginateDescribeVpcEndpointConnectionNotifications,
  DescribeVpcEndpointServiceConfigurationsCommand,
  RejectVpcEndpointConnectionsCommand,
  paginateDescribeVpcEndpointConnections,
  paginateDescribeVpcEndpointServiceConfigurations,
  type EC2Client,
  type Filter,
  type ServiceConfiguration,
  type UnsuccessfulItem,
  type VpcEndpointConnection,
} from '@aws-sdk/client-ec2';
import { normalizeState, type ObservedConnection } from '../domain/connection';
import type { Spoke } from '../domain/spokes';
import type { Failure } from '../errors';
import { logger } from '../logger';
import { EC2_ACTION_BATCH_SIZE, EC2_FILTER_VALUES_LIMIT, type ConnectionNotificationConfig, type ConnectionQuery, type Ec2Connections } from '../engine/ports';
import { ec2Client } from './clients';
import { describeAllowedPrincipals, modifyAllowedPrincipals } from './endpoint-service-permissions';

const PAGE_SIZE = 1000;

/** EC2's endpoint connections through one client: one account and Region (`location`, when known, is named on what it reads). */
export function ec2Connections(client: EC2Client = ec2Client, location?: Spoke): Ec2Connections {
  return {
    describe: (query) => describeConnections(query, client, location),
    act: (action, serviceId, endpointIds) => actOnConnections(action, serviceId, endpointIds, client),
    allowedPrincipals: (serviceId) => describeAllowedPrincipals(serviceId, client),
    modifyAllowedPrincipals: (serviceId, change) => modifyAllowedPrincipals(serviceId, change, client),
    connectionNotifications: () => describeConnectionNotifications(client),
    createConnectionNotification: async (serviceId, topicArn, events) => {
      await client.send(new CreateVpcEndpointConnectionNotificationCommand({ ServiceId: serviceId, ConnectionNotificationArn: topicArn, ConnectionEvents: [...events] }));
    },
  };
}

/** The connection notifications of the account's endpoint services in the client's Region (not those of endpoints), every page. */
async function describeConnectionNotifications(client: EC2Client): Promise<ConnectionNotificationConfig[]> {
  const configs: ConnectionNotificationConfig[] = [];
  for await (const page of paginateDescribeVpcEndpointConnectionNotifications({ client, pageSize: PAGE_SIZE }, {})) {
    for (const item of page.ConnectionNotificationSet ?? []) {
      if (!item.ServiceId || !item.ConnectionNotificationArn) continue;
      configs.push({ serviceId: item.ServiceId, topicArn: item.ConnectionNotificationArn, events: item.ConnectionEvents ?? [] });
    }
  }
  return configs;
}

/** Reads connections from EC2, every page, optionally narrowed by service, endpoints, owner or state. */
export async function describeConnections(query: ConnectionQuery, client: EC2Client = ec2Client, location?: Spoke): Promise<ObservedConnection[]> {
  const endpointBatches = query.endpointIds ? chunk(query.endpointIds, EC2_FILTER_VALUES_LIMIT) : [undefined];
  const connections: ObservedConnection[] = [];
  for (const endpointIds of endpointBatches) {
    const filters: Filter[] = [];
    if (query.serviceId) filters.push({ Name: 'service-id', Values: [query.serviceId] });
    if (endpointIds) filters.push({ Name: 'vpc-endpoint-id', Values: endpointIds });
    if (query.ownerAccountId) filters.push({ Name: 'vpc-endpoint-owner', Values: [query.ownerAccountId] });
    if (query.states) filters.push({ Name: 'vpc-endpoint-state', Values: query.states });
    const pages = paginateDescribeVpcEndpointConnections({ client, pageSize: PAGE_SIZE }, { Filters: filters });
    for await (const page of pages) {
      for (const item of page.VpcEndpointConnections ?? []) {
        const connection = toObserved(item, await client.config.region(), location);
        if (connection) connections.push(connection);
      }
    }
  }
  return connections;
}

function toObserved(item: VpcEndpointConnection, ownRegion: string, location: Spoke | undefined): ObservedConnection | undefined {
  const state = normalizeState(item.VpcEndpointState);
  if (!item.ServiceId || !item.VpcEndpointId || !item.VpcEndpointOwner || !state) {
    logger.warn('skipping an endpoint connection EC2 described incompletely', {
      serviceId: item.ServiceId,
      endpointId: item.VpcEndpointId,
      state: item.VpcEndpointState,
    });
    return undefined;
  }
  return {
    serviceId: item.ServiceId,
    endpointId: item.VpcEndpointId,
    ownerAccountId: item.VpcEndpointOwner,
    region: item.VpcEndpointRegion || ownRegion,
    state,
    createdAt: item.CreationTimestamp?.toISOString(),
    ...(location ? { providerAccountId: location.accountId, serviceRegion: location.region } : {}),
  };
}

export type ConnectionAction = 'accept' | 'reject';

/**
 * One AcceptVpcEndpointConnections or RejectVpcEndpointConnections call for at
 * most EC2_ACTION_BATCH_SIZE endpoints of one service. Returns the per-endpoint
 * failures EC2 reported (its Unsuccessful list); a call that fails outright,
 * after the client's own retries, throws.
 */
export async function actOnConnections(
  action: ConnectionAction,
  serviceId: string,
  endpointIds: string[],
  client: EC2Client = ec2Client,
): Promise<Map<string, Failure>> {
  if (endpointIds.length > EC2_ACTION_BATCH_SIZE) throw new RangeError(`at most ${EC2_ACTION_BATCH_SIZE} endpoints per call, not ${endpointIds.length}`);
  const input = { ServiceId: serviceId, VpcEndpointIds: endpointIds };
  const output =
    action === 'accept'
      ? await client.send(new AcceptVpcEndpointConnectionsCommand(input))
      : await client.send(new RejectVpcEndpointConnectionsCommand(input));
  const failures = new Map<string, Failure>();
  for (const item of output.Unsuccessful ?? []) recordFailure(item, failures);
  return failures;
}

function recordFailure(item: UnsuccessfulItem, failures: Map<string, Failure>): void {
  if (!item.ResourceId) return;
  failures.set(item.ResourceId, {
    code: item.Error?.Code ?? 'Unknown',
    message: item.Error?.Message ?? 'EC2 gave no reason',
  });
}

/** Every endpoint service the account provides in the client's Region, with its tags: every page. */
export async function listEndpointServices(client: EC2Client = ec2Client): Promise<EndpointServiceDescription[]> {
  return servicesMatching([], client);
}

/** The account's endpoint services that carry a tag with this value, with all their tags: every page. */
export async function listTaggedEndpointServices(tag: { key: string; value: string }, client: EC2Client = ec2Client): Promise<EndpointServiceDescription[]> {
  return servicesMatching([{ Name: `tag:${tag.key}`, Values: [tag.value] }], client);
}

/** An endpoint service as EC2 describes it, with its tags. */
export interface EndpointServiceDescription {
  serviceId: string;
  tags: Record<string, string>;
}

/** Describes some of the account's endpoint services; an id EC2 does not know is left out. */
export async function describeEndpointServices(serviceIds: string[], client: EC2Client = ec2Client): Promise<EndpointServiceDescription[]> {
  try {
    const output = await client.send(new DescribeVpcEndpointServiceConfigurationsCommand({ ServiceIds: serviceIds }));
    return (output.ServiceConfigurations ?? []).flatMap(describedService);
  } catch (error) {
    if (error instanceof Error && error.name === 'InvalidVpcEndpointServiceId.NotFound') return [];
    throw error;
  }
}

async function servicesMatching(filters: Filter[], client: EC2Client): Promise<EndpointServiceDescription[]> {
  const services: EndpointServiceDescription[] = [];
  const input = filters.length ? { Filters: filters } : {};
  const pages = paginateDescribeVpcEndpointServiceConfigurations({ client, pageSize: PAGE_SIZE }, input);
  for await (const page of pages) services.push(...(page.ServiceConfigurations ?? []).flatMap(describedService));
  return services;
}

function describedService(service: ServiceConfiguration): EndpointServiceDescription[] {
  if (!service.ServiceId) return [];
  return [{ serviceId: service.ServiceId, tags: Object.fromEntries((service.Tags ?? []).map(({ Key, Value }) => [Key ?? '', Value ?? ''])) }];
}

function chunk<T>(items: T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}
