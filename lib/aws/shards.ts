/**
 * Spreading what one key would concentrate over several partitions, and reading
 * it back in one order. DynamoDB serves each partition key value with at most
 * 1,000 write units and 3,000 read units a second; a burst on one service, or
 * across services in one state, would otherwise land on one value.
 */

/** Which of `count` shards an id belongs to: FNV-1a of its characters, so it never changes for a connection. */
export function shardOf(id: string, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}

/** Where a listing stands in one shard: not read yet, after this item, or read to its end. */
export type ShardPosition<K> = { kind: 'start' } | { kind: 'after'; key: K } | { kind: 'done' };

/** One page read from one shard: items in the shard's order, and whether more follow. */
export interface ShardPage<T> {
  items: T[];
  more: boolean;
}

/**
 * One page of a listing spread over shards: each shard not yet at its end is read
 * from where it stood (at most `limit` items), and the pages are merged by `order`
 * until `limit` items are taken or a shard with more to give has run out of read
 * items (what it holds next might come first). Each item is taken once and in
 * order across pages; the positions say where each shard stands for the next page.
 */
export async function readMerged<T, K>(options: {
  positions: readonly ShardPosition<K>[];
  limit: number;
  read: (shard: number, after: K | undefined, limit: number) => Promise<ShardPage<T>>;
  order: (item: T) => string;
  keyOf: (item: T) => K;
}): Promise<{ items: T[]; positions: ShardPosition<K>[] }> {
  const { positions, limit } = options;
  const pages = await Promise.all(
    positions.map((position, shard) =>
      position.kind === 'done' ? { items: [], more: false } : options.read(shard, position.kind === 'after' ? position.key : undefined, limit),
    ),
  );
  const taken = pages.map(() => 0);
  const items: T[] = [];
  while (items.length < limit) {
    let next: number | undefined;
    let stalled = false;
    for (let shard = 0; shard < pages.length; shard++) {
      const page = pages[shard] as ShardPage<T>;
      const head = page.items[taken[shard] as number];
      if (head === undefined) {
        if (page.more) stalled = true;
        continue;
      }
      if (next === undefined || options.order(head) < options.order((pages[next] as ShardPage<T>).items[taken[next] as number] as T)) next = shard;
    }
    if (stalled || next === undefined) break;
    items.push((pages[next] as ShardPage<T>).items[taken[next] as number] as T);
    taken[next] = (taken[next] as number) + 1;
  }
  return {
    items,
    positions: positions.map((position, shard) => {
      const page = pages[shard] as ShardPage<T>;
      const count = taken[shard] as number;
      if (position.kind === 'done') return position;
      if (count === page.items.length && !page.more) return { kind: 'done' };
      if (count === 0) return position;
      return { kind: 'after', key: options.keyOf(page.items[count - 1] as T) };
    }),
  };
}
