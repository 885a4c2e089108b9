import { UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ConnectionState } from '../domain/connection';
import { CONNECTION_STATES } from '../domain/connection';
import { config } from '../config';
import { documentClient } from './clients';
import { batchGetItems } from './query';
import { COUNT_SHARDS, keys } from './table';

/**
 * How many connections each service has in each state, kept beside the records:
 * every write that changes a record's state adds +1 to the new state and −1 to
 * the old one (COUNT_SHARDS items per service; a service's counts are their sum).
 *
 * Exact under concurrent writes: each change of state is counted by the one
 * writer whose conditional write made it, after that write succeeded and before
 * its put returns, and DynamoDB applies an ADD atomically, so concurrent writers
 * neither lose nor double a count. Not atomic with the record: a function that
 * dies between its record write and the ADD leaves that service's counts one off
 * until `scripts/migrate-table.ts --recount` rebuilds them from the records (a
 * transaction per write would make it atomic, at twice the write units and with
 * conflicts on these items under a burst; dynalite, the local DynamoDB, has none).
 *
 * The changes of writes made at the same time are added up and written together,
 * one ADD per service, so that a burst costs a few count writes per batch of
 * records rather than one per record.
 */

type Deltas = Map<ConnectionState, number>;

interface Pending {
  deltas: Map<string, Deltas>;
  waiters: { resolve: () => void; reject: (error: unknown) => void }[];
}

/** Per client (tests hand in their own): what waits to be written, and whether a write is under way. */
const batchers = new WeakMap<DynamoDBDocumentClient, { pending: Pending; writing: boolean }>();

/**
 * Adds a record's change of state to its service's counts; resolves once the
 * counts hold it. `from` undefined: a new record.
 */
export function countChange(
  serviceId: string,
  from: ConnectionState | undefined,
  to: ConnectionState,
  db: DynamoDBDocumentClient = documentClient,
): Promise<void> {
  if (from === to) return Promise.resolve();
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = { pending: { deltas: new Map(), waiters: [] }, writing: false };
    batchers.set(db, batcher);
  }
  const deltas = batcher.pending.deltas.get(serviceId) ?? new Map<ConnectionState, number>();
  batcher.pending.deltas.set(serviceId, deltas);
  deltas.set(to, (deltas.get(to) ?? 0) + 1);
  if (from) deltas.set(from, (deltas.get(from) ?? 0) - 1);
  const counted = new Promise<void>((resolve, reject) => batcher.pending.waiters.push({ resolve, reject }));
  if (!batcher.writing) void writePending(batcher, db);
  return counted;
}

/** Writes what is pending, and again what arrived meanwhile, until nothing is. */
async function writePending(batcher: { pending: Pending; writing: boolean }, db: DynamoDBDocumentClient): Promise<void> {
  batcher.writing = true;
  // Let the writes that finish together join this one.
  await new Promise((resolve) => setImmediate(resolve));
  while (batcher.pending.waiters.length) {
    const { deltas, waiters } = batcher.pending;
    batcher.pending = { deltas: new Map(), waiters: [] };
    try {
      await Promise.all([...deltas].map(([serviceId, byState]) => addCounts(serviceId, byState, db)));
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error);
    }
  }
  batcher.writing = false;
}

async function addCounts(serviceId: string, byState: Deltas, db: DynamoDBDocumentClient): Promise<void> {
  const changes = [...byState].filter(([, delta]) => delta !== 0);
  if (!changes.length) return;
  // Any of the service's count items: they take the writes in turn, whoever makes them.
  const shard = Math.floor(Math.random() * COUNT_SHARDS);
  await db.send(
    new UpdateCommand({
      TableName: config().TABLE_NAME,
      Key: keys.counts(serviceId, shard),
      // The service's id is kept in the item, so that a read of many services' counts knows whose each is.
      UpdateExpression: `SET serviceId = :service ADD ${changes.map((_, i) => `#s${i} :d${i}`).join(', ')}`,
      ExpressionAttributeNames: Object.fromEntries(changes.map(([state], i) => [`#s${i}`, state])),
      ExpressionAttributeValues: { ':service': serviceId, ...Object.fromEntries(changes.map(([, delta], i) => [`:d${i}`, delta])) },
    }),
  );
}

/**
 * How many connections each service has in each state (states with none left
 * out): its count items, read consistently in one BatchGet per 25 services,
 * whatever the number of connections.
 */
export async function countConnectionsByState(
  serviceIds: readonly string[],
  db: DynamoDBDocumentClient = documentClient,
): Promise<Map<string, Partial<Record<ConnectionState, number>>>> {
  const counts = new Map<string, Partial<Record<ConnectionState, number>>>(serviceIds.map((serviceId) => [serviceId, {}]));
  const countKeys = serviceIds.flatMap((serviceId) => Array.from({ length: COUNT_SHARDS }, (_, shard) => keys.counts(serviceId, shard)));
  for (const item of await batchGetItems(db, config().TABLE_NAME, countKeys, { consistentRead: true })) {
    const serviceId = typeof item.serviceId === 'string' ? item.serviceId : undefined;
    const service = serviceId === undefined ? undefined : counts.get(serviceId);
    if (!service) continue;
    for (const state of CONNECTION_STATES) {
      const value = item[state];
      if (typeof value === 'number') service[state] = (service[state] ?? 0) + value;
    }
  }
  for (const service of counts.values()) {
    for (const state of CONNECTION_STATES) if (service[state] === 0) delete service[state];
  }
  return counts;
}
