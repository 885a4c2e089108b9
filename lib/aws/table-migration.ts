import { GetCommand, PutCommand, ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CONNECTION_STATES, type ConnectionState } from '../domain/connection';
import { config } from '../config';
import { forEachSettled } from '../concurrency';
import { documentClient } from './clients';
import { moveLegacyItem } from './connection-store';
import { COUNT_SHARDS, keys } from './table';

/**
 * The data migration of a stage deployed before the connections were sharded
 * (issue 20): every connection item at its old key (pk CONN#<serviceId>) is moved
 * to its key now (pk CONN#<serviceId>#<shard>) and counted, with the functions
 * running. Resumable: the Scan's position is kept in the table after each page,
 * and a run starts where the last one stopped. Idempotent: a connection is moved
 * once however many runs (or reads, see getConnections) reach it. Done when one
 * pass of the whole table found nothing left to move: then the functions stop
 * looking at old keys. Run by hand (scripts/migrate-table.ts) or by the reconciler.
 */

export interface MigrationProgress {
  done: boolean;
  /** Connections moved, over every run. */
  moved: number;
  /** Items scanned in the pass under way (or the last one). */
  scanned: number;
  /** Connections that changed at their old key while being moved, in this pass: the next pass moves them. */
  leftBehind: number;
}

const SCAN_PAGE = 200;
const MOVE_CONCURRENCY = 8;
/** An old connection key: the service alone, no shard. */
const LEGACY_PARTITION = /^CONN#vpce-svc-[0-9a-f]+$/;

interface StoredProgress extends MigrationProgress {
  startKey?: Record<string, unknown>;
}

/** Where the migration stands, as the table keeps it. */
export async function migrationProgress(db: DynamoDBDocumentClient = documentClient): Promise<MigrationProgress> {
  const { startKey: _, ...progress } = await readProgress(db);
  return progress;
}

/**
 * Moves connections from their old keys, page after page, until none is left
 * (then marks the migration done) or `budgetMs` has passed (then a later run
 * goes on from there).
 */
export async function migrateLegacyConnections(
  options: { budgetMs?: number; onPage?: (progress: MigrationProgress) => void } = {},
  db: DynamoDBDocumentClient = documentClient,
): Promise<MigrationProgress> {
  const deadline = Date.now() + (options.budgetMs ?? Number.POSITIVE_INFINITY);
  let progress = await readProgress(db);
  while (!progress.done && Date.now() < deadline) {
    const page = await db.send(
      new ScanCommand({
        TableName: config().TABLE_NAME,
        Limit: SCAN_PAGE,
        ExclusiveStartKey: progress.startKey,
        ConsistentRead: true,
      }),
    );
    const legacy = (page.Items ?? []).filter((item) => typeof item.pk === 'string' && LEGACY_PARTITION.test(item.pk) && String(item.sk).startsWith('EP#'));
    let leftBehind = 0;
    const failures = await forEachSettled(legacy, MOVE_CONCURRENCY, async (item) => {
      if ((await moveLegacyItem(item, db)).leftBehind) leftBehind += 1;
    });
    if (failures[0]) throw failures[0].error;
    progress = {
      done: false,
      moved: progress.moved + legacy.length - leftBehind,
      scanned: progress.scanned + (page.Items?.length ?? 0),
      leftBehind: progress.leftBehind + leftBehind,
      ...(page.LastEvaluatedKey ? { startKey: page.LastEvaluatedKey } : {}),
    };
    if (!page.LastEvaluatedKey) {
      // A whole pass: done if it left nothing behind, else another pass from the start.
      progress = progress.leftBehind === 0 ? { ...progress, done: true } : { ...progress, scanned: 0, leftBehind: 0 };
    }
    await writeProgress(progress, db);
    options.onPage?.(withoutStartKey(progress));
  }
  return withoutStartKey(progress);
}

/**
 * Rebuilds every service's counts from its records (a Scan of the whole table),
 * for after a function died between a record's write and its count's. In a quiet
 * moment: a change of state counted while the Scan runs could be counted twice.
 */
export async function recountConnections(db: DynamoDBDocumentClient = documentClient): Promise<Map<string, Partial<Record<ConnectionState, number>>>> {
  const counts = new Map<string, Partial<Record<ConnectionState, number>>>();
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: config().TABLE_NAME, ExclusiveStartKey: startKey, ConsistentRead: true }));
    for (const item of page.Items ?? []) {
      if (item.type === 'connection' && typeof item.serviceId === 'string' && !LEGACY_PARTITION.test(String(item.pk))) {
        const service = counts.get(item.serviceId) ?? {};
        counts.set(item.serviceId, service);
        const state = item.state as ConnectionState;
        service[state] = (service[state] ?? 0) + 1;
      }
      // A service with count items and no records any more is counted as none.
      if (String(item.pk).startsWith('COUNTS#') && typeof item.serviceId === 'string' && !counts.has(item.serviceId)) counts.set(item.serviceId, {});
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  for (const [serviceId, byState] of counts) {
    for (let shard = 0; shard < COUNT_SHARDS; shard++) {
      const states = Object.fromEntries(CONNECTION_STATES.map((state) => [state, shard === 0 ? (byState[state] ?? 0) : 0]));
      await db.send(new PutCommand({ TableName: config().TABLE_NAME, Item: { ...keys.counts(serviceId, shard), serviceId, ...states } }));
    }
  }
  return counts;
}

async function readProgress(db: DynamoDBDocumentClient): Promise<StoredProgress> {
  const { Item } = await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: keys.migration(), ConsistentRead: true }));
  if (!Item) return { done: false, moved: 0, scanned: 0, leftBehind: 0 };
  return {
    done: Item.done === true,
    moved: Number(Item.moved ?? 0),
    scanned: Number(Item.scanned ?? 0),
    leftBehind: Number(Item.leftBehind ?? 0),
    ...(Item.startKey ? { startKey: Item.startKey as Record<string, unknown> } : {}),
  };
}

async function writeProgress(progress: StoredProgress, db: DynamoDBDocumentClient): Promise<void> {
  await db.send(new PutCommand({ TableName: config().TABLE_NAME, Item: { ...keys.migration(), type: 'migration', ...progress, updatedAt: new Date().toISOString() } }));
}

function withoutStartKey({ startKey: _, ...progress }: StoredProgress): MigrationProgress {
  return progress;
}
