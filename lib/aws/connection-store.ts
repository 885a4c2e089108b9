import { createHash } from 'node:crypto';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { ConnectionRecord, ConnectionState, HistoryEvent } from '../domain/connection';
import type { ConnectionRecords } from '../engine/ports';
import { ConflictError } from '../errors';
import { config } from '../config';
import { logger } from '../logger';
import { documentClient } from './clients';
import { countChange, writeCounts } from './connection-counts';
import { batchGetItems, queryAllItems } from './query';
import { decodeQueueCursor, decodeServiceConnectionsCursor, encodeShardedCursor, queueListing, serviceListing, type Page } from './cursor';
import { readMerged, type ShardPage, type ShardPosition } from './shards';
import {
  BY_SERVICE_STATE_INDEX,
  BY_STATE_SHARD_INDEX,
  CONNECTION_SHARDS,
  HISTORY_KEPT,
  keys,
  QUEUE_ATTRIBUTES,
  QUEUE_SHARDS,
  versionCondition,
} from './table';

/** The connection records in the table, as the engine reaches them. */
export function connectionRecords(db: DynamoDBDocumentClient = documentClient): ConnectionRecords {
  return {
    getMany: (ids) => getConnections(ids, db),
    get: (serviceId, endpointId) => getConnection(serviceId, endpointId, db),
    put: (record, expectedVersion) => putConnection(record, expectedVersion, db, { counts: 'later' }),
    writeCounts: () => writeCounts(db),
  };
}

/**
 * Reads the records of several connections, keyed by endpoint id; missing ones
 * are absent. Each record holds its latest HISTORY_KEPT history entries.
 */
export async function getConnections(
  ids: readonly { serviceId: string; endpointId: string }[],
  db: DynamoDBDocumentClient = documentClient,
): Promise<Map<string, ConnectionRecord>> {
  const read = (keyOf: (serviceId: string, endpointId: string) => Record<string, string>, wanted: typeof ids) =>
    batchGetItems(db, config().TABLE_NAME, wanted.map(({ serviceId, endpointId }) => keyOf(serviceId, endpointId)), { consistentRead: true });
  const records = new Map((await read(keys.connection, ids)).map((item) => fromItem(item)).map((record) => [record.endpointId, record]));
  const missing = ids.filter(({ endpointId }) => !records.has(endpointId));
  if (missing.length && (await legacyConnectionsRemain(db))) {
    for (const item of await read(keys.legacyConnection, missing)) records.set(String(item.endpointId), fromItem(item));
  }
  return records;
}

/** Reads one connection's record (its latest HISTORY_KEPT history entries), or undefined if the table has never seen it. */
export async function getConnection(
  serviceId: string,
  endpointId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<ConnectionRecord | undefined> {
  const read = async (key: Record<string, string>) =>
    (await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: key, ConsistentRead: true }))).Item;
  const item = (await read(keys.connection(serviceId, endpointId))) ?? ((await legacyConnectionsRemain(db)) ? await read(keys.legacyConnection(serviceId, endpointId)) : undefined);
  return item ? fromItem(item) : undefined;
}

/** One connection's record with its whole history: the entries moved out of the record, then the record's own. */
export async function getConnectionWithHistory(
  serviceId: string,
  endpointId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<ConnectionRecord | undefined> {
  const record = await getConnection(serviceId, endpointId, db);
  if (!record) return undefined;
  const older: HistoryEvent[] = [];
  const chunks = queryAllItems(db, {
    TableName: config().TABLE_NAME,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
    ExpressionAttributeValues: { ':pk': keys.connection(serviceId, endpointId).pk, ':prefix': keys.historyOf(endpointId).skPrefix },
    ConsistentRead: true,
  });
  for await (const chunk of chunks) older.push(...(chunk.entries as HistoryEvent[]));
  // A chunk written by a write that then lost its race is written again by the next: the same entries, once.
  const seen = new Set<string>();
  const history = [...older, ...record.history].filter((entry) => {
    const text = JSON.stringify(entry);
    if (seen.has(text)) return false;
    seen.add(text);
    return true;
  });
  return { ...record, history };
}

/**
 * Writes a record if the table still holds `expectedVersion` of it (undefined:
 * if the table has none), and counts its change of state: before it returns, or
 * with `counts: 'later'` tallied for the caller's writeCounts (see
 * connection-counts.ts). History beyond the latest HISTORY_KEPT entries is moved
 * to a history item first, so that the record stays small. Throws ConflictError
 * when another writer got there first.
 */
export async function putConnection(
  record: ConnectionRecord,
  expectedVersion: number | undefined,
  db: DynamoDBDocumentClient = documentClient,
  { counts = 'now' }: { counts?: 'now' | 'later' } = {},
): Promise<void> {
  const kept = await keepLatestHistory(record, db);
  const write = () =>
    db.send(new PutCommand({ TableName: config().TABLE_NAME, Item: toItem(kept), ...versionCondition(expectedVersion), ReturnValues: 'ALL_OLD' }));
  let previous: Record<string, unknown> | undefined;
  try {
    previous = (await write()).Attributes;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // A record read from its old key (see getConnections) is moved there now, and written over.
    if (!(await movedFromLegacyKey(record, expectedVersion, db))) {
      throw new ConflictError(`connection ${record.endpointId} was changed by another writer`, { cause: error });
    }
    try {
      previous = (await write()).Attributes;
    } catch (retryError) {
      if (retryError instanceof ConditionalCheckFailedException) {
        throw new ConflictError(`connection ${record.endpointId} was changed by another writer`, { cause: retryError });
      }
      throw retryError;
    }
  }
  const from = previous?.state as ConnectionState | undefined;
  countChange(record.serviceId, from, record.state, db);
  if (counts === 'later') return;
  try {
    await writeCounts(db);
  } catch (error) {
    // The record is written: that is what the caller asked for. The change stays tallied for the next write of the counts.
    logger.error('a change of state was recorded but not yet counted', { serviceId: record.serviceId, endpointId: record.endpointId, from, to: record.state, error });
  }
}

/** The record with its latest HISTORY_KEPT entries, the older ones written to a history item (named by its entries, so a retry rewrites the same one). */
async function keepLatestHistory(record: ConnectionRecord, db: DynamoDBDocumentClient): Promise<ConnectionRecord> {
  const overflow = record.history.length - HISTORY_KEPT;
  if (overflow <= 0) return record;
  const entries = record.history.slice(0, overflow);
  const hash = createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 12);
  await db.send(
    new PutCommand({
      TableName: config().TABLE_NAME,
      Item: { ...keys.historyChunk(record.serviceId, record.endpointId, entries[0]?.at ?? '', hash), type: 'history', entries },
    }),
  );
  return { ...record, history: record.history.slice(overflow) };
}

export type { Page } from './cursor';

/** What a list of connections shows of each: the attributes byStateShard projects. */
export type ListedConnection = Pick<ConnectionRecord, (typeof QUEUE_ATTRIBUTES)[number]>;

/**
 * The connections in one state across every service, oldest first: the
 * byStateShard index's partitions read together and merged by creation time.
 * The index holds what a page shows (QUEUE_ATTRIBUTES), so nothing more is read.
 * Like any index of DynamoDB's, it follows the records within a moment: a
 * connection decided a moment ago may still show in its old state.
 */
export async function listConnectionsByState(
  state: ConnectionState,
  options: { limit: number; cursor?: string },
  db: DynamoDBDocumentClient = documentClient,
): Promise<Page<ListedConnection>> {
  const positions = options.cursor ? decodeQueueCursor(options.cursor, state) : startPositions(QUEUE_SHARDS);
  const page = await readMerged<Record<string, unknown>, string>({
    positions,
    limit: options.limit,
    read: async (shard, after, limit) => {
      const output = await db.send(
        new QueryCommand({
          TableName: config().TABLE_NAME,
          IndexName: BY_STATE_SHARD_INDEX,
          KeyConditionExpression: 'gsi2pk = :pk',
          ExpressionAttributeValues: { ':pk': keys.stateShard(state, shard).gsi2pk },
          Limit: limit,
          ExclusiveStartKey: after === undefined ? undefined : queueStartKey(state, after),
        }),
      );
      return shardPage(output.Items, output.LastEvaluatedKey, (item) => item);
    },
    order: queueSortKey,
    keyOf: queueSortKey,
  });
  return {
    items: page.items.map((item) => fromItem(item) as ListedConnection),
    cursor: encodeShardedCursor(queueListing(state), page.positions),
  };
}

/**
 * The connections of one service, by endpoint id: its CONNECTION_SHARDS
 * partitions read together and merged. With a state, the byServiceState index
 * (keys only) read the same way and one BatchGet of the page's records: the work
 * of a page is bounded by `limit` for each shard, whatever the service holds. A
 * record whose state changed since the index saw it is left out of that page.
 */
export async function listConnectionsOfService(
  serviceId: string,
  options: { state?: ConnectionState; limit: number; cursor?: string },
  db: DynamoDBDocumentClient = documentClient,
): Promise<Page<ConnectionRecord>> {
  const { state } = options;
  const positions = options.cursor ? decodeServiceConnectionsCursor(options.cursor, serviceId, state) : startPositions(CONNECTION_SHARDS);
  const read = async (shard: number, after: string | undefined, limit: number) => {
    const { pk } = keys.connectionShard(serviceId, shard);
    const startKey = after === undefined ? undefined : keys.connection(serviceId, after);
    const output = await db.send(
      new QueryCommand(
        state
          ? {
              TableName: config().TABLE_NAME,
              IndexName: BY_SERVICE_STATE_INDEX,
              KeyConditionExpression: 'pk = :pk AND #state = :state',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':pk': pk, ':state': state },
              Limit: limit,
              ExclusiveStartKey: startKey && { ...startKey, state },
            }
          : {
              TableName: config().TABLE_NAME,
              KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ep)',
              ExpressionAttributeValues: { ':pk': pk, ':ep': 'EP#' },
              Limit: limit,
              ExclusiveStartKey: startKey,
            },
      ),
    );
    return shardPage(output.Items, output.LastEvaluatedKey, (item) => item);
  };
  const endpointOf = (item: Record<string, unknown>) => String(item.sk).slice('EP#'.length);
  // The byServiceState index orders a partition's entries by state alone: listed by state, the shards share no order.
  const page = await readMerged<Record<string, unknown>, string>({ positions, limit: options.limit, read, order: state ? undefined : endpointOf, keyOf: endpointOf });
  const items = state
    ? await recordsInState(page.items.map((item) => ({ serviceId, endpointId: endpointOf(item) })), state, db)
    : page.items.map(fromItem);
  return { items, cursor: encodeShardedCursor(serviceListing(serviceId, state), page.positions) };
}

/** Where an entry of byStateShard sorts: `<createdAt>#<serviceId>#<endpointId>`. */
function queueSortKey(item: Record<string, unknown>): string {
  return String(item.gsi2sk);
}

/** The index key to resume a byStateShard partition after `sortKey` (`<createdAt>#<serviceId>#<endpointId>`). */
function queueStartKey(state: string, sortKey: string): Record<string, string> {
  const [createdAt = '', serviceId = '', endpointId = ''] = sortKey.split('#');
  return { ...keys.byStateShard(state, createdAt, serviceId, endpointId), ...keys.connection(serviceId, endpointId) };
}

function startPositions(shards: number): ShardPosition<string>[] {
  return Array.from({ length: shards }, () => ({ kind: 'start' }));
}

function shardPage<T>(items: Record<string, unknown>[] | undefined, lastEvaluatedKey: Record<string, unknown> | undefined, convert: (item: Record<string, unknown>) => T): ShardPage<T> {
  return { items: (items ?? []).map(convert), more: lastEvaluatedKey !== undefined };
}

/** The records of these connections still in `state`, in the order given. */
async function recordsInState(ids: readonly { serviceId: string; endpointId: string }[], state: ConnectionState, db: DynamoDBDocumentClient): Promise<ConnectionRecord[]> {
  const records = await getConnections(ids, db);
  return ids.flatMap(({ endpointId }) => {
    const record = records.get(endpointId);
    return record?.state === state ? [record] : [];
  });
}

function toItem(record: ConnectionRecord): Record<string, unknown> {
  return {
    ...keys.connection(record.serviceId, record.endpointId),
    ...keys.byStateShard(record.state, record.createdAt, record.serviceId, record.endpointId),
    type: 'connection',
    ...record,
  };
}

function fromItem(item: Record<string, unknown>): ConnectionRecord {
  const { pk: _pk, sk: _sk, gsi2pk: _gsi2pk, gsi2sk: _gsi2sk, gsi1pk: _gsi1pk, gsi1sk: _gsi1sk, type: _type, ...record } = item;
  return record as unknown as ConnectionRecord;
}

// A stage written before the connections were sharded (LEGACY_CONNECTIONS): a
// connection not found at its key may still be at its old one. Reads look
// there too (and change nothing); the first write moves it; and
// scripts/migrate-table.ts (or the reconciler) moves the rest.

/** How long a container trusts that the migration is still under way before it looks again. */
const MIGRATION_RECHECK_MS = 60_000;
let migrationSeenDone = false;
let migrationCheckedAt = -Infinity;

/** Whether connections may still be at their old keys: the stage says so, and the migration has not said it is done. */
async function legacyConnectionsRemain(db: DynamoDBDocumentClient): Promise<boolean> {
  if (!config().LEGACY_CONNECTIONS || migrationSeenDone) return false;
  if (Date.now() - migrationCheckedAt > MIGRATION_RECHECK_MS) {
    const { Item } = await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: keys.migration(), ConsistentRead: true }));
    migrationSeenDone = Item?.done === true;
    migrationCheckedAt = Date.now();
  }
  return !migrationSeenDone;
}

/** Whether the record the caller read at `expectedVersion` was at its old key, and is now moved to its key. */
async function movedFromLegacyKey(record: ConnectionRecord, expectedVersion: number | undefined, db: DynamoDBDocumentClient): Promise<boolean> {
  if (expectedVersion === undefined || !(await legacyConnectionsRemain(db))) return false;
  const { Item } = await db.send(
    new GetCommand({ TableName: config().TABLE_NAME, Key: keys.legacyConnection(record.serviceId, record.endpointId), ConsistentRead: true }),
  );
  if (Item?.version !== expectedVersion) return false;
  await moveLegacyItem(Item, db);
  return true;
}

/**
 * Moves one connection from its old key: written at its key (counted there) if
 * nobody did so yet, then its old item deleted if it is still the one read.
 * Idempotent: run twice, or by two at once, it moves the connection once.
 * `leftBehind`: the old item changed meanwhile and stays, for the next pass.
 */
export async function moveLegacyItem(
  item: Record<string, unknown>,
  db: DynamoDBDocumentClient = documentClient,
): Promise<{ record: ConnectionRecord; leftBehind: boolean }> {
  const record = fromItem(item);
  let current = record;
  try {
    await putConnection(record, undefined, db);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    current = (await getConnections([record], db)).get(record.endpointId) ?? record;
  }
  try {
    await db.send(
      new DeleteCommand({
        TableName: config().TABLE_NAME,
        Key: keys.legacyConnection(record.serviceId, record.endpointId),
        ConditionExpression: 'version = :version',
        ExpressionAttributeValues: { ':version': record.version },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // Written again at its old key since it was read (a function of the previous release still running): the next pass moves it.
    logger.warn('a connection changed at its old key while it was moved', { serviceId: record.serviceId, endpointId: record.endpointId });
    return { record: current, leftBehind: true };
  }
  return { record: current, leftBehind: false };
}

/** Forgets what this container saw of the migration (tests, and the local stack's reset). */
export function forgetMigrationProgress(): void {
  migrationSeenDone = false;
  migrationCheckedAt = -Infinity;
}
