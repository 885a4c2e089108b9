import {
  AcceptVpcEndpointConnectionsCommand,
  DescribeVpcEndpointServiceConfigurationsCommand,
  RejectVpcEndpointConnectionsCommand,
  paginateDescribeVpcEndpointConnections,
  paginateDescribeVpcEndpointServiceConfigurations,
  type EC2Client,
  type Filter,
  type UnsuccessfulItem,
  type VpcEndpointConnection,
} from '@aws-sdk/client-ec2';
import { normalizeState, type ConnectionState, type ObservedConnection } from '../domain/connection';
import { logger } from '../logger';
import { ec2Client } from './clients';

/** The most endpoint ids sent in one Accept or Reject call, or one describe filter. */
export const ACTION_BATCH_SIZE = 100;
/** The most values EC2 takes in one filter: endpoint ids read per Describe call. */
export const FILTER_VALUES_LIMIT = 200;
const PAGE_SIZE = 1000;

export interface ConnectionQuery {
  serviceId?: string;
  endpointIds?: string[];
  ownerAccountId?: string;
  states?: ConnectionState[];
}

/** Reads connections from EC2, every page, optionally narrowed by service, endpoints, owner or state. */
export async function describeConnections(query: ConnectionQuery, client: EC2Client = ec2Client): Promise<ObservedConnection[]> {
  const endpointBatches = query.endpointIds ? chunk(query.endpointIds, FILTER_VALUES_LIMIT) : [undefined];
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
        const connection = toObserved(item, await client.config.region());
        if (connection) connections.push(connection);
      }
    }
  }
  return connections;
}

function toObserved(item: VpcEndpointConnection, ownRegion: string): ObservedConnection | undefined {
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
  };
}

/** Why EC2 refused to act on one endpoint of a batch. */
export interface ActionFailure {
  code: string;
  message: string;
}

export type ConnectionAction = 'accept' | 'reject';

/**
 * Accepts or rejects endpoint connections of one service, in batches. Returns the
 * per-endpoint failures EC2 reported (its Unsuccessful list); a call that fails
 * outright, after the client's own retries, throws.
 */
export async function actOnConnections(
  action: ConnectionAction,
  serviceId: string,
  endpointIds: string[],
  client: EC2Client = ec2Client,
): Promise<Map<string, ActionFailure>> {
  const failures = new Map<string, ActionFailure>();
  for (const batch of chunk(endpointIds, ACTION_BATCH_SIZE)) {
    const input = { ServiceId: serviceId, VpcEndpointIds: batch };
    const output =
      action === 'accept'
        ? await client.send(new AcceptVpcEndpointConnectionsCommand(input))
        : await client.send(new RejectVpcEndpointConnectionsCommand(input));
    for (const item of output.Unsuccessful ?? []) recordFailure(item, failures);
  }
  return failures;
}

function recordFailure(item: UnsuccessfulItem, failures: Map<string, ActionFailure>): void {
  if (!item.ResourceId) return;
  failures.set(item.ResourceId, {
    code: item.Error?.Code ?? 'Unknown',
    message: item.Error?.Message ?? 'EC2 gave no reason',
  });
}

/** Every endpoint service the account provides. */
export async function listEndpointServiceIds(client: EC2Client = ec2Client): Promise<string[]> {
  return serviceIdsMatching([], client);
}

/** The account's endpoint services that carry a tag with this value. */
export async function listTaggedEndpointServiceIds(tag: { key: string; value: string }, client: EC2Client = ec2Client): Promise<string[]> {
  return serviceIdsMatching([{ Name: `tag:${tag.key}`, Values: [tag.value] }], client);
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
    return (output.ServiceConfigurations ?? []).flatMap((service) =>
      service.ServiceId
        ? [{ serviceId: service.ServiceId, tags: Object.fromEntries((service.Tags ?? []).map(({ Key, Value }) => [Key ?? '', Value ?? ''])) }]
        : [],
    );
  } catch (error) {
    if (error instanceof Error && error.name === 'InvalidVpcEndpointServiceId.NotFound') return [];
    throw error;
  }
}

async function serviceIdsMatching(filters: Filter[], client: EC2Client): Promise<string[]> {
  const ids: string[] = [];
  const input = filters.length ? { Filters: filters } : {};
  const pages = paginateDescribeVpcEndpointServiceConfigurations({ client, pageSize: PAGE_SIZE }, input);
  for await (const page of pages) {
    for (const service of page.ServiceConfigurations ?? []) if (service.ServiceId) ids.push(service.ServiceId);
  }
  return ids;
}

function chunk<T>(items: T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}
