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
 * One page of a listing spread over shards, merged by `order`. Each shard not
 * yet at its end is read from where it stood, all at once, for twice its share
 * of the page and two more (a page of 25 over 8 shards reads 9 from each, not
 * 25; a shard holds more of a page than that on about one page in a hundred). When
 * the merge reaches a shard that has more than it read (what it holds next might
 * come first), that shard alone is read again for what the page still lacks, so
 * a page is full unless the listing ends. Each item is taken once and in order
 * across pages; the positions say where each shard stands for the next page.
 *
 * Without `order`, the shards share no order (an index whose key is the same for
 * every entry of the listing): the page takes what the shards read, shard by
 * shard, and reads a shard again only when nothing read is left to take.
 */
export async function readMerged<T, K>(options: {
  positions: readonly ShardPosition<K>[];
  limit: number;
  read: (shard: number, after: K | undefined, limit: number) => Promise<ShardPage<T>>;
  order?: (item: T) => string;
  keyOf: (item: T) => K;
}): Promise<{ items: T[]; positions: ShardPosition<K>[] }> {
  const { positions, limit, order } = options;
  const open = positions.filter((position) => position.kind !== 'done').length;
  const share = Math.min(limit, Math.ceil((2 * limit) / Math.max(1, open)) + 2);
  const shards = positions.map((position) => ({
    read: [] as T[],
    taken: 0,
    more: position.kind !== 'done',
    after: position.kind === 'after' ? position.key : undefined,
  }));
  const readMore = (shard: number, count: number) =>
    options.read(shard, shards[shard]?.after, count).then((page) => {
      const state = shards[shard] as (typeof shards)[number];
      state.read.push(...page.items);
      state.more = page.more;
      const last = page.items[page.items.length - 1];
      if (last !== undefined) state.after = options.keyOf(last);
      return page.items.length;
    });
  await Promise.all(shards.map((state, shard) => (state.more ? readMore(shard, share) : 0)));
  const items: T[] = [];
  while (items.length < limit) {
    let next: number | undefined;
    const stalled: number[] = [];
    shards.forEach((state, shard) => {
      const head = state.read[state.taken];
      if (head === undefined) {
        if (state.more) stalled.push(shard);
        return;
      }
      const nextState = next === undefined ? undefined : shards[next];
      if (nextState === undefined) next = shard;
      else if (order !== undefined && order(head) < order(nextState.read[nextState.taken] as T)) next = shard;
    });
    // Unordered, a stalled shard holds nothing that must come before what was read: it waits until nothing else is left.
    if (stalled.length && (order !== undefined || next === undefined)) {
      // What a stalled shard holds next might come before every head read: read it again before taking anything.
      const wanted = limit - items.length;
      const got = await Promise.all(stalled.map((shard) => readMore(shard, wanted)));
      // A read that gives nothing yet says there is more would be asked again forever: the page ends here.
      if (got.some((count, i) => count === 0 && shards[stalled[i] as number]?.more)) break;
      continue;
    }
    if (next === undefined) break;
    const state = shards[next] as (typeof shards)[number];
    items.push(state.read[state.taken] as T);
    state.taken += 1;
  }
  return {
    items,
    positions: positions.map((position, shard) => {
      const state = shards[shard] as (typeof shards)[number];
      if (position.kind === 'done') return position;
      if (state.taken === state.read.length && !state.more) return { kind: 'done' };
      if (state.taken === 0) return position;
      return { kind: 'after', key: options.keyOf(state.read[state.taken - 1] as T) };
    }),
  };
}
