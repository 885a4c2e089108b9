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
 * writer whose conditional write made it (the old state comes back with that
 * write), and DynamoDB applies an ADD atomically, so concurrent writers neither
 * lose nor double a count.
 *
 * The changes are tallied in memory and written together (writeCounts): one
 * ADD per service for all the changes tallied since the last write, so that a
 * burst costs one count write per service and invocation rather than one per
 * record. The engine writes them once it has applied a service's plan, before
 * its run returns; a write that fails leaves its changes tallied for the next.
 * Not atomic with the records: a function that dies between a record's write
 * and the ADD (at most the time it takes to apply one service's plan) leaves
 * that service's counts off by what it tallied until `scripts/migrate-table.ts
 * --recount` rebuilds them from the records (a transaction per write would make
 * it atomic, at twice the write units and with conflicts on these items under
 * a burst; dynalite, the local DynamoDB, has none).
 */

type Deltas = Map<ConnectionState, number>;

/** Per client (tests hand in their own): the changes tallied and not yet written, and the writes under way. */
interface Tally {
  deltas: Map<string, Deltas>;
  writing: Set<Promise<void>>;
}

const tallies = new WeakMap<DynamoDBDocumentClient, Tally>();

function tallyOf(db: DynamoDBDocumentClient): Tally {
  let tally = tallies.get(db);
  if (!tally) {
    tally = { deltas: new Map(), writing: new Set() };
    tallies.set(db, tally);
  }
  return tally;
}

/** Tallies a record's change of state for its service's counts (written by writeCounts). `from` undefined: a new record. */
export function countChange(serviceId: string, from: ConnectionState | undefined, to: ConnectionState, db: DynamoDBDocumentClient = documentClient): void {
  if (from === to) return;
  const { deltas } = tallyOf(db);
  add(deltas, serviceId, to, 1);
  if (from) add(deltas, serviceId, from, -1);
}

function add(deltas: Map<string, Deltas>, serviceId: string, state: ConnectionState, delta: number): void {
  const byState = deltas.get(serviceId) ?? new Map<ConnectionState, number>();
  deltas.set(serviceId, byState);
  byState.set(state, (byState.get(state) ?? 0) + delta);
}

/**
 * Writes every change tallied so far, one ADD per service; resolves once the
 * counts hold them, and those of any write already under way. Throws when this
 * write fails; its changes stay tallied, to be written by the next.
 */
export async function writeCounts(db: DynamoDBDocumentClient = documentClient): Promise<void> {
  const tally = tallyOf(db);
  const deltas = tally.deltas;
  tally.deltas = new Map();
  const others = [...tally.writing];
  const mine = (async () => {
    const services = [...deltas];
    const written = await Promise.allSettled(services.map(([serviceId, byState]) => addCounts(serviceId, byState, db)));
    const failures = written.flatMap((result, i) => (result.status === 'rejected' ? [{ byService: services[i] as [string, Deltas], error: result.reason as unknown }] : []));
    // Not written (as far as DynamoDB said): tallied again, so that the next write carries them.
    for (const { byService: [serviceId, byState] } of failures) {
      for (const [state, delta] of byState) add(tally.deltas, serviceId, state, delta);
    }
    if (failures[0]) throw failures[0].error;
  })();
  tally.writing.add(mine);
  try {
    await Promise.allSettled([...others, mine]);
    await mine;
  } finally {
    tally.writing.delete(mine);
  }
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
