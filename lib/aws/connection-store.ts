import { BatchGetCommand, type BatchGetCommandOutput, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { ConnectionRecord, ConnectionState } from '../domain/connection';
import { ConflictError } from '../errors';
import { config } from '../config';
import { documentClient } from './clients';
import { queryAllItems } from './query';
import { decodeQueueCursor, decodeServiceConnectionsCursor, encodeCursor, type Page } from './cursor';
import { BY_STATE_INDEX, keys } from './table';

const BATCH_GET_LIMIT = 100;

/** Reads the records of several connections, keyed by endpoint id; missing ones are absent. */
export async function getConnections(
  ids: { serviceId: string; endpointId: string }[],
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
  const condition =
    expectedVersion === undefined
      ? { ConditionExpression: 'attribute_not_exists(pk)' }
      : { ConditionExpression: 'version = :expected', ExpressionAttributeValues: { ':expected': expectedVersion } };
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
 * The connections of one service, by endpoint id, optionally only those in one
 * state: a Query on the service's partition. A page holds up to `limit` records.
 */
export async function listConnectionsOfService(
  serviceId: string,
  options: { state?: ConnectionState; limit: number; cursor?: string },
  db: DynamoDBDocumentClient = documentClient,
): Promise<Page<ConnectionRecord>> {
  const partition = keys.connectionsOfService(serviceId);
  let startKey: Record<string, unknown> | undefined = options.cursor ? decodeServiceConnectionsCursor(options.cursor, serviceId) : undefined;
  const items: ConnectionRecord[] = [];
  // A filter applies after Limit, so keep reading, asking each time only for what is
  // still missing: a page is never cut in the middle, and the cursor skips nothing.
  do {
    const output = await db.send(
      new QueryCommand({
        TableName: config().TABLE_NAME,
        KeyConditionExpression: 'pk = :pk',
        ...(options.state
          ? { FilterExpression: '#state = :state', ExpressionAttributeNames: { '#state': 'state' } }
          : {}),
        ExpressionAttributeValues: { ':pk': partition.pk, ...(options.state ? { ':state': options.state } : {}) },
        Limit: options.limit - items.length,
        ExclusiveStartKey: startKey,
      }),
    );
    items.push(...(output.Items ?? []).map(fromItem));
    startKey = output.LastEvaluatedKey;
  } while (startKey && items.length < options.limit);
  return { items, cursor: startKey ? encodeCursor(startKey) : undefined };
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
