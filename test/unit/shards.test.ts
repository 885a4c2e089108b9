import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readMerged, shardOf, type ShardPage, type ShardPosition } from '../../lib/aws/shards';

const endpointId = fc.stringMatching(/^[0-9a-f]{17}$/).map((hex) => `vpce-${hex}`);

describe('the shard of a connection', () => {
  it('is the same for the same id, and one of the shards', () => {
    fc.assert(
      fc.property(endpointId, fc.integer({ min: 1, max: 64 }), (id, count) => {
        const shard = shardOf(id, count);
        expect(shard).toBe(shardOf(id, count));
        expect(Number.isInteger(shard) && shard >= 0 && shard < count).toBe(true);
      }),
    );
  });

  it('spreads 10,000 endpoint ids evenly over 16 shards', () => {
    const ids = fc.sample(endpointId, { numRuns: 10_000, seed: 20 });
    const perShard = Array.from({ length: 16 }, () => 0);
    for (const id of ids) perShard[shardOf(id, 16)] = (perShard[shardOf(id, 16)] ?? 0) + 1;

    for (const count of perShard) expect(Math.abs(count - 625)).toBeLessThan(625 * 0.15);
  });
});

/** Shards held in memory, read as DynamoDB reads a partition: in order, after a key, at most `limit`, sometimes fewer (a 1 MB page). */
function memoryShards(contents: string[][], shortPages: boolean) {
  const sorted = contents.map((items) => [...items].sort());
  let reads = 0;
  let itemsRead = 0;
  return {
    reads: () => reads,
    itemsRead: () => itemsRead,
    read: async (shard: number, after: string | undefined, limit: number): Promise<ShardPage<string>> => {
      reads += 1;
      itemsRead += Math.min(limit, (sorted[shard] ?? []).filter((item) => after === undefined || item > after).length);
      const rest = (sorted[shard] ?? []).filter((item) => after === undefined || item > after);
      const size = shortPages ? Math.max(1, Math.floor(limit / 2)) : limit;
      // As DynamoDB does, a page that reaches its Limit says there may be more, even when there is not.
      return { items: rest.slice(0, size), more: rest.length >= size && rest.length > 0 };
    },
  };
}

/** Pages through every shard with readMerged, as the API's cursor would, until no shard has more. */
async function pageThrough(contents: string[][], limits: number[], shortPages: boolean): Promise<string[][]> {
  const shards = memoryShards(contents, shortPages);
  let positions: ShardPosition<string>[] = contents.map(() => ({ kind: 'start' }));
  const pages: string[][] = [];
  for (let page = 0; positions.some((position) => position.kind !== 'done'); page++) {
    if (page > 10_000) throw new Error('paging did not end');
    const result = await readMerged({
      positions,
      limit: limits[page % limits.length] as number,
      read: shards.read,
      order: (item) => item,
      keyOf: (item) => item,
    });
    pages.push(result.items);
    positions = result.positions;
  }
  return pages;
}

describe('reading shards merged', () => {
  const shardContents = fc.integer({ min: 1, max: 8 }).chain((count) =>
    fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 60 }).map((items) => {
      const contents: string[][] = Array.from({ length: count }, () => []);
      items.forEach((item, i) => contents[i % count]?.push(item));
      return contents;
    }),
  );

  it('takes every item exactly once, in one order across pages, whatever the page sizes and however short the shards read', async () => {
    await fc.assert(
      fc.asyncProperty(shardContents, fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 5 }), fc.boolean(), async (contents, limits, shortPages) => {
        const pages = await pageThrough(contents, limits, shortPages);

        expect(pages.flat()).toEqual(contents.flat().sort());
        // Full pages, however short the shards read, until the last.
        pages.slice(0, -1).forEach((page, i) => expect(page.length).toBe(limits[i % limits.length] as number));
        expect(pages.at(-1)?.length ?? 0).toBeLessThanOrEqual(limits[(pages.length - 1) % limits.length] as number);
      }),
    );
  });

  it('fills a page when every shard reads whole pages, and reads a shard no more once it is done', async () => {
    const contents = [['a', 'd', 'g'], ['b', 'e'], ['c', 'f', 'h', 'i']];
    const shards = memoryShards(contents, false);

    const first = await readMerged({ positions: contents.map(() => ({ kind: 'start' as const })), limit: 4, read: shards.read, order: (x) => x, keyOf: (x) => x });
    const second = await readMerged({ positions: first.positions, limit: 4, read: shards.read, order: (x) => x, keyOf: (x) => x });
    const readsBeforeLast = shards.reads();
    const last = await readMerged({ positions: second.positions, limit: 4, read: shards.read, order: (x) => x, keyOf: (x) => x });

    expect([first.items, second.items, last.items]).toEqual([['a', 'b', 'c', 'd'], ['e', 'f', 'g', 'h'], ['i']]);
    expect(second.positions).toEqual([{ kind: 'done' }, { kind: 'done' }, { kind: 'after', key: 'h' }]);
    expect(shards.reads() - readsBeforeLast).toBe(1);
    expect(last.positions.every((position) => position.kind === 'done')).toBe(true);
  });

  it('reads each shard for twice its share of a page and two more, not for a whole page', async () => {
    const contents = Array.from({ length: 8 }, (_, shard) => Array.from({ length: 100 }, (_, i) => `${String(i).padStart(3, '0')}-${shard}`));
    const shards = memoryShards(contents, false);

    const page = await readMerged({ positions: contents.map(() => ({ kind: 'start' as const })), limit: 25, read: shards.read, order: (x) => x, keyOf: (x) => x });

    expect(page.items).toEqual(contents.flat().sort().slice(0, 25));
    expect(shards.itemsRead()).toBe(8 * 9);
  });

  it('reads a shard again for what the page lacks when its next items come first', async () => {
    const contents = [Array.from({ length: 30 }, (_, i) => `a${String(i).padStart(2, '0')}`), ['z1'], ['z2'], ['z3']];
    const shards = memoryShards(contents, false);

    const page = await readMerged({ positions: contents.map(() => ({ kind: 'start' as const })), limit: 20, read: shards.read, order: (x) => x, keyOf: (x) => x });

    expect(page.items).toEqual(contents[0]?.slice(0, 20));
    expect(page.positions).toEqual([{ kind: 'after', key: 'a19' }, { kind: 'start' }, { kind: 'start' }, { kind: 'start' }]);
  });

  it('without an order (an index keyed by state alone), fills a page from what the shards read, one read each, and still takes every item once', async () => {
    // 30 items in one shard, one in each other: ordered, the first shard would be read again; unordered, nothing is.
    const contents = [Array.from({ length: 30 }, (_, i) => `a${String(i).padStart(2, '0')}`), ['z1'], ['z2'], ['z3']];
    const shards = memoryShards(contents, false);
    let positions: ShardPosition<string>[] = contents.map(() => ({ kind: 'start' }));
    const pages: string[][] = [];
    const readsPerPage: number[] = [];
    while (positions.some((position) => position.kind !== 'done')) {
      const before = shards.reads();
      const page = await readMerged({ positions, limit: 10, read: shards.read, keyOf: (x) => x });
      readsPerPage.push(shards.reads() - before);
      pages.push(page.items);
      positions = page.positions;
    }

    expect(pages[0]).toHaveLength(10);
    expect(readsPerPage[0]).toBe(4);
    expect(pages.flat().sort()).toEqual(contents.flat().sort());
  });
});
