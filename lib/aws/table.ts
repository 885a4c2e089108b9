import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { shardOf } from './shards';

/**
 * The single-table layout. This module and the gateways beside it are the only
 * code that knows about pk/sk or raw attribute names. Why the keys are shaped so
 * (DynamoDB's per-partition limits, the write units of a burst): docs/architecture.md.
 *
 *   connection     pk CONN#<serviceId>#<shard 0-15>   sk EP#<endpointId>
 *                  gsi2pk STATE#<state>#<shard 0-7>   gsi2sk <createdAt>#<serviceId>#<endpointId>   (byStateShard, QUEUE_ATTRIBUTES)
 *                  byServiceState: pk and the record's own `state` attribute (keys only)
 *   old history    pk CONN#<serviceId>#<shard>        sk HIST#<endpointId>#<first entry's time>#<hash>   (entries beyond the record's last HISTORY_KEPT)
 *   counts         pk COUNTS#<serviceId>#<0-3>        sk COUNTS   (a number per connection state; a service's counts are the sum of its 4 items)
 *   policy version pk POLICY#<serviceId|default>  sk V#<version, zero-padded>
 *   admission      pk ADMISSION#<serviceId>  sk ACCOUNT#<accountId>  (endpoints holding the account's places)
 *   membership     pk ORGMEMBER#<accountId> sk MEMBERSHIP               (expires: TTL)
 *   sharing        pk SHARING#<serviceId>   sk PRINCIPALS
 *   slack message  pk SLACKMSG#<serviceId>#<endpointId>  sk MESSAGE   (the Slack message about a connection)
 *   slack request  pk SLACKREQ#<signature>  sk SEEN                   (expires: TTL; replay protection)
 *   migration      pk MIGRATION#sharded-connections  sk PROGRESS       (scripts/migrate-table.ts)
 *
 * Before the connections were sharded (a stage deployed before issue 20), a
 * connection was pk CONN#<serviceId> sk EP#<endpointId>, with gsi1pk STATE#<state>
 * and gsi1sk on the byState index (all attributes); table-migration.ts moves them.
 */

/** A service's connections are spread over this many partitions, by endpoint id. */
export const CONNECTION_SHARDS = 16;
/** The connections in one state (every service's) are spread over this many partitions of byStateShard. */
export const QUEUE_SHARDS = 8;
/** A service's counts by state are kept in this many items, each taking a share of the updates. */
export const COUNT_SHARDS = 4;
/** How many of its latest history entries a connection's record holds; older ones move to history items. */
export const HISTORY_KEPT = 10;

/**
 * One state's connections across services, oldest first, over QUEUE_SHARDS
 * partitions, with what a page of the queue shows (QUEUE_ATTRIBUTES), so that a
 * page is read from the index alone.
 */
export const BY_STATE_SHARD_INDEX = 'byStateShard';
/**
 * The attributes byStateShard projects beyond the keys: what the API shows of a
 * connection in a list. Not the version or the outbox, so that the writes that
 * change only those (publishing the outbox) cost the index nothing.
 */
export const QUEUE_ATTRIBUTES = [
  'serviceId',
  'endpointId',
  'ownerAccountId',
  'region',
  'providerAccountId',
  'serviceRegion',
  'state',
  'decision',
  'claim',
  'createdAt',
  'updatedAt',
  'history',
] as const;
/** The index of the connections before they were sharded; kept on a stage only until its migration (legacyStateIndex). */
export const LEGACY_BY_STATE_INDEX = 'byState';
/**
 * One service's connections in one state, so that a state filter is a key
 * condition rather than a filter applied after Limit (which could read a whole
 * partition for one page). Keys only: a page reads its records with BatchGet.
 */
export const BY_SERVICE_STATE_INDEX = 'byServiceState';
export const TTL_ATTRIBUTE = 'expiresAt';

const connectionPartition = (serviceId: string, shard: number) => `CONN#${serviceId}#${shard}`;

export const keys = {
  connection: (serviceId: string, endpointId: string) => ({
    pk: connectionPartition(serviceId, shardOf(endpointId, CONNECTION_SHARDS)),
    sk: `EP#${endpointId}`,
  }),
  /** The partition of one shard of a service's connections. */
  connectionShard: (serviceId: string, shard: number) => ({ pk: connectionPartition(serviceId, shard) }),
  /** Where a connection sits in byStateShard. */
  byStateShard: (state: string, createdAt: string, serviceId: string, endpointId: string) => ({
    gsi2pk: `STATE#${state}#${shardOf(endpointId, QUEUE_SHARDS)}`,
    gsi2sk: `${createdAt}#${serviceId}#${endpointId}`,
  }),
  /** One partition of byStateShard. */
  stateShard: (state: string, shard: number) => ({ gsi2pk: `STATE#${state}#${shard}` }),
  /** A run of a connection's history entries moved out of its record, ordered by the time of the first. */
  historyChunk: (serviceId: string, endpointId: string, firstAt: string, hash: string) => ({
    pk: connectionPartition(serviceId, shardOf(endpointId, CONNECTION_SHARDS)),
    sk: `HIST#${endpointId}#${firstAt}#${hash}`,
  }),
  historyOf: (endpointId: string) => ({ skPrefix: `HIST#${endpointId}#` }),
  counts: (serviceId: string, shard: number) => ({ pk: `COUNTS#${serviceId}#${shard}`, sk: 'COUNTS' }),
  /** A connection as it was written before the connections were sharded. */
  legacyConnection: (serviceId: string, endpointId: string) => ({ pk: `CONN#${serviceId}`, sk: `EP#${endpointId}` }),
  migration: () => ({ pk: 'MIGRATION#sharded-connections', sk: 'PROGRESS' }),
  policyVersion: (policyId: string, version: number) => ({
    pk: `POLICY#${policyId}`,
    sk: `V#${String(version).padStart(10, '0')}`,
  }),
  policyVersions: (policyId: string) => ({ pk: `POLICY#${policyId}` }),
  /** An account's places under maxEndpointsPerAccount on one service: admissions serialise on this item. */
  admission: (serviceId: string, accountId: string) => ({ pk: `ADMISSION#${serviceId}`, sk: `ACCOUNT#${accountId}` }),
  membership: (accountId: string) => ({ pk: `ORGMEMBER#${accountId}`, sk: 'MEMBERSHIP' }),
  sharing: (serviceId: string) => ({ pk: `SHARING#${serviceId}`, sk: 'PRINCIPALS' }),
  /** The Slack message that announces a connection; each its own partition, as each is written on its own. */
  slackMessage: (serviceId: string, endpointId: string) => ({ pk: `SLACKMSG#${serviceId}#${endpointId}`, sk: 'MESSAGE' }),
  /** A Slack request already handled, by its signature: a second one with the same signature is a replay. */
  slackRequest: (signature: string) => ({ pk: `SLACKREQ#${signature}`, sk: 'SEEN' }),
};

/**
 * The condition of a versioned write: the item must not exist yet (no version
 * read), or must still be at the version that was read.
 */
export function versionCondition(expectedVersion: number | undefined) {
  return expectedVersion === undefined
    ? { ConditionExpression: 'attribute_not_exists(pk)' }
    : { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } };
}

/** The table as CloudFormation declares it (serverless.yml), for creating it locally. */
export function tableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
      { AttributeName: 'gsi2pk', AttributeType: 'S' },
      { AttributeName: 'gsi2sk', AttributeType: 'S' },
      { AttributeName: 'state', AttributeType: 'S' },
    ],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: BY_STATE_SHARD_INDEX,
        KeySchema: [
          { AttributeName: 'gsi2pk', KeyType: 'HASH' },
          { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...QUEUE_ATTRIBUTES] },
      },
      {
        IndexName: BY_SERVICE_STATE_INDEX,
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'state', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    ],
  };
}
