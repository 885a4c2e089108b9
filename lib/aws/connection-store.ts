import { BatchGetCommand, type BatchGetCommandOutput, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { ConnectionRecord, ConnectionState } from '../domain/connection';
import type { ConnectionRecords } from '../engine/ports';
import { ConflictError } from '../errors';
import { config } from '../config';
import { documentClient } from './clients';
import { queryAllItems } from './query';
import { decodeQueueCursor, decodeServiceConnectionsCursor, decodeServiceStateCursor, encodeCursor, type Page } from './cursor';
import { BY_SERVICE_STATE_INDEX, BY_STATE_INDEX, keys, versionCondition } from './table';

const BATCH_GET_LIMIT = 100;

/** The connection records in the table, as the engine reaches them. */
export function connectionRecords(db: DynamoDBDocumentClient = documentClient): ConnectionRecords {
  return {
    getMany: (ids) => getConnections(ids, db),
    get: (serviceId, endpointId) => getConnection(serviceId, endpointId, db),
    put: (record, expectedVersion) => putConnection(record, expectedVersion, db),
  };
}

/** Reads the records of several connections, keyed by endpoint id; missing ones are absent. */
export async function getConnections(
  ids: readonly { serviceId: string; endpointId: string }[],
  db: DynamoDBDocumentClient = documentClient,
): Promise<Map<string, ConnectionRecord>> {
  const tableName = config().TABLE_NAME;
  const records = new Map<string, ConnectionRecord>();
  for (let i = 0; i < ids.length; i += BATCH_GET_LIMIT) {
    let requestKeys: Record<string, unknown>[] | undefined = ids
      .slice(i, i + BATCH_GET_LIMIT)
      .map(({ serviceId, endpointId }) => keys.connection(serviceId, endpointId));
    for (let attempt = 0; requestKeys?.length; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
      const output: BatchGetCommandOutput = await db.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: requestKeys, ConsistentRead: true } } }));
      for (const item of output.Responses?.[tableName] ?? []) {
        const record = fromItem(item);
        records.set(record.endpointId, record);
      }
      requestKeys = output.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  return records;
}

/** Reads one connection's record, or undefined if the table has never seen it. */
export async function getConnection(
  serviceId: string,
  endpointId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<ConnectionRecord | undefined> {
  const output = await db.send(
    new GetCommand({ TableName: config().TABLE_NAME, Key: keys.connection(serviceId, endpointId), ConsistentRead: true }),
  );
  return output.Item ? fromItem(output.Item) : undefined;
}

/**
 * Writes a record if the table still holds `expectedVersion` of it (undefined:
 * if the table has none). Throws ConflictError when another writer got there first.
 */
export async function putConnection(
  record: ConnectionRecord,
  expectedVersion: number | undefined,
  db: DynamoDBDocumentClient = documentClient,
): Promise<void> {
  const condition = versionCondition(expectedVersion);
  try {
    await db.send(new PutCommand({ TableName: config().TABLE_NAME, Item: toItem(record), ...condition }));
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new ConflictError(`connection ${record.endpointId} was changed by another writer`, { cause: error });
    }
    throw error;
  }
}

export type { Page } from './cursor';

/** The connections in one state across every service, oldest first: a Query on the byState index. */
export async function listConnectionsByState(
  state: ConnectionState,
  options: { limit: number; cursor?: string },
  db: DynamoDBDocumentClient = documentClient,
): Promise<Page<ConnectionRecord>> {
  const partition = keys.byState(state);
  const output = await db.send(
    new QueryCommand({
      TableName: config().TABLE_NAME,
      IndexName: BY_STATE_INDEX,
      KeyConditionExpression: 'gsi1pk = :state',
      ExpressionAttributeValues: { ':state': partition.gsi1pk },
      Limit: options.limit,
      ExclusiveStartKey: options.cursor ? decodeQueueCursor(options.cursor, state) : undefined,
    }),
  );
  return {
    items: (output.Items ?? []).map(fromItem),
    cursor: output.LastEvaluatedKey ? encodeCursor(output.LastEvaluatedKey) : undefined,
  };
}

/**
 * The connections of one service, by endpoint id: a Query on the service's
 * partition. With a state, a Query on the byServiceState index (keys only) and
 * one BatchGet of the page's records, in no particular order: the work of a page
 * is bounded by `limit`, whatever the partition holds. A record whose state
 * changed since the index saw it is left out of that page.
 */
export async function listConnectionsOfService(
  serviceId: string,
  options: { state?: ConnectionState; limit: number; cursor?: string },
  db: DynamoDBDocumentClient = documentClient,
): Promise<Page<ConnectionRecord>> {
  const { state } = options;
  if (state) return listConnectionsOfServiceInState(serviceId, state, options, db);
  const output = await db.send(
    new QueryCommand({
      TableName: config().TABLE_NAME,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.connectionsOfService(serviceId).pk },
      Limit: options.limit,
      ExclusiveStartKey: options.cursor ? decodeServiceConnectionsCursor(options.cursor, serviceId) : undefined,
    }),
  );
  return { items: (output.Items ?? []).map(fromItem), cursor: output.LastEvaluatedKey ? encodeCursor(output.LastEvaluatedKey) : undefined };
}

async function listConnectionsOfServiceInState(
  serviceId: string,
  state: ConnectionState,
  options: { limit: number; cursor?: string },
  db: DynamoDBDocumentClient,
): Promise<Page<ConnectionRecord>> {
  const output = await db.send(
    new QueryCommand({
      TableName: config().TABLE_NAME,
      IndexName: BY_SERVICE_STATE_INDEX,
      KeyConditionExpression: 'pk = :pk AND #state = :state',
      ExpressionAttributeNames: { '#state': 'state' },
      ExpressionAttributeValues: { ':pk': keys.connectionsOfService(serviceId).pk, ':state': state },
      Limit: options.limit,
      ExclusiveStartKey: options.cursor ? decodeServiceStateCursor(options.cursor, serviceId, state) : undefined,
    }),
  );
  const ids = (output.Items ?? []).flatMap((item) => {
    const endpointId = typeof item.sk === 'string' ? item.sk.replace(/^EP#/, '') : undefined;
    return endpointId ? [{ serviceId, endpointId }] : [];
  });
  const records = await getConnections(ids, db);
  return {
    items: ids.flatMap(({ endpointId }) => {
      const record = records.get(endpointId);
      return record?.state === state ? [record] : [];
    }),
    cursor: output.LastEvaluatedKey ? encodeCursor(output.LastEvaluatedKey) : undefined,
  };
}

/** How many of a service's connections the table holds in each state: a Query reading only the state. */
export async function countConnectionsByState(
  serviceId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<Partial<Record<ConnectionState, number>>> {
  const counts: Partial<Record<ConnectionState, number>> = {};
  const items = queryAllItems(db, {
    TableName: config().TABLE_NAME,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': keys.connectionsOfService(serviceId).pk },
    ProjectionExpression: '#state',
    ExpressionAttributeNames: { '#state': 'state' },
  });
  for await (const item of items) {
    const state = item.state as ConnectionState;
    counts[state] = (counts[state] ?? 0) + 1;
  }
  return counts;
}

function toItem(record: ConnectionRecord): Record<string, unknown> {
  return {
    ...keys.connection(record.serviceId, record.endpointId),
    ...keys.byState(record.state),
    ...keys.byStateSort(record.createdAt, record.serviceId, record.endpointId),
    type: 'connection',
    ...record,
  };
}

function fromItem(item: Record<string, unknown>): ConnectionRecord {
  const { pk: _pk, sk: _sk, gsi1pk: _gsi1pk, gsi1sk: _gsi1sk, type: _type, ...record } = item;
  return record as unknown as ConnectionRecord;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
