import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePolicyVersionsCursor,
  decodeQueueCursor,
  decodeServiceConnectionsCursor,
  encodeCursor,
  encodeShardedCursor,
  queueListing,
  serviceListing,
} from '../../lib/aws/cursor';
import { shardOf, type ShardPosition } from '../../lib/aws/shards';
import { CONNECTION_SHARDS, keys, QUEUE_SHARDS } from '../../lib/aws/table';
import { CONNECTION_STATES } from '../../lib/domain/connection';
import { ValidationError } from '../../lib/errors';

// The paging cursor decoder refuses anything it did not issue: whatever the input, it
// either throws ValidationError (a 400) or returns exactly what it would have issued:
// a key rebuilt from ids in their AWS formats (policy versions), or for a listing spread
// over shards, each shard's position, every key checked to belong to its shard.

const SERVICE = 'vpce-svc-0123456789abcdef0';
const hex = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${min},${max}}$`));
const serviceId = hex(8, 17).map((h) => `vpce-svc-${h}`);
const endpointId = hex(8, 17).map((h) => `vpce-${h}`);
const state = fc.constantFrom(...CONNECTION_STATES);
const timestamp = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString());

const asCursor = (value: unknown) => Buffer.from(JSON.stringify(value) ?? '').toString('base64url');

/** Positions of a listing over `shards` shards, each at its start, after a key made from the shard, or done. */
function positionsOf(shards: number, keyFor: fc.Arbitrary<(shard: number) => string>): fc.Arbitrary<ShardPosition<string>[]> {
  return fc.tuple(fc.array(fc.constantFrom('start', 'after', 'done'), { minLength: shards, maxLength: shards }), keyFor).map(([kinds, key]) =>
    kinds.map((kind, shard): ShardPosition<string> => (kind === 'after' ? { kind, key: key(shard) } : { kind: kind as 'start' | 'done' })),
  );
}

/** An endpoint id of the given shard: hex ids drawn until one falls in it (deterministic per seed). */
function endpointOfShard(seed: string, shards: number, shard: number): string {
  for (let i = 0; ; i++) {
    const candidate = `vpce-${(seed + i.toString(16)).padStart(17, '0').slice(-17)}`;
    if (shardOf(candidate, shards) === shard) return candidate;
  }
}

const decoders: [string, (cursor: string) => unknown][] = [
  ['policy versions', (cursor) => decodePolicyVersionsCursor(cursor, SERVICE)],
  ["a service's connections", (cursor) => decodeServiceConnectionsCursor(cursor, SERVICE)],
  ["a service's connections in one state", (cursor) => decodeServiceConnectionsCursor(cursor, SERVICE, 'deleted')],
  ['the queue', (cursor) => decodeQueueCursor(cursor, 'pendingAcceptance')],
];

/** Cursor-shaped objects: the fields listings use, with any values. */
const cursorShaped = fc.record(
  {
    listing: fc.oneof(fc.string(), fc.constant(serviceListing(SERVICE)), fc.constant(queueListing('pendingAcceptance'))),
    after: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('0', '1', '15', '16', '01', '-1')), fc.oneof(fc.string(), endpointId, fc.integer())),
    done: fc.array(fc.oneof(fc.integer({ min: -2, max: 20 }), fc.double(), fc.string())),
    pk: fc.string(),
  },
  { requiredKeys: [] },
);
/** Cursors as they come: any text, any JSON, cursor-shaped JSON, and keys of the listings before sharding. */
const anyCursor = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 3000 }),
  fc.json().map(asCursor),
  cursorShaped.map(asCursor),
  endpointId.map((endpoint) => encodeCursor({ pk: `CONN#${SERVICE}`, sk: `EP#${endpoint}` })),
  fc.string().map((tail) => asCursor({ pk: `POLICY#${SERVICE}`, sk: `V#${tail}` })),
);

describe('the paging cursor decoder', () => {
  it.each(decoders)('for %s, refuses (ValidationError) whatever it did not issue', (_, decode) => {
    fc.assert(
      fc.property(anyCursor, (cursor) => {
        let decoded: unknown;
        try {
          decoded = decode(cursor);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          return;
        }
        // Accepted: then it is exactly what the listing would have issued.
        if (Array.isArray(decoded)) {
          expect(encodeShardedCursor(JSON.parse(Buffer.from(cursor, 'base64url').toString()).listing, decoded)).toBe(cursor);
        } else {
          expect(encodeCursor(decoded as Record<string, string>)).toBe(cursor);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts back every cursor it issues, as the same positions', () => {
    const serviceKeys = hex(1, 8).map((seed) => (shard: number) => endpointOfShard(seed, CONNECTION_SHARDS, shard));
    const queueKeys = fc.tuple(timestamp, serviceId, hex(1, 8)).map(([createdAt, service, seed]) => (shard: number) => `${createdAt}#${service}#${endpointOfShard(seed, QUEUE_SHARDS, shard)}`);
    fc.assert(
      fc.property(
        serviceId,
        state,
        positionsOf(CONNECTION_SHARDS, serviceKeys),
        positionsOf(QUEUE_SHARDS, queueKeys),
        fc.integer({ min: 1, max: 9_999_999_999 }),
        (service, s, servicePositions, queuePositions, version) => {
          const policyKey = keys.policyVersion(service, version);
          const serviceCursor = encodeShardedCursor(serviceListing(service), servicePositions);
          const stateCursor = encodeShardedCursor(serviceListing(service, s), servicePositions);
          const queueCursor = encodeShardedCursor(queueListing(s), queuePositions);

          expect(decodePolicyVersionsCursor(encodeCursor(policyKey), service)).toEqual(policyKey);
          // Every shard read to its end: there is no next page, and no cursor.
          if (serviceCursor === undefined) expect(servicePositions.every((p) => p.kind === 'done')).toBe(true);
          else expect(decodeServiceConnectionsCursor(serviceCursor, service)).toEqual(servicePositions);
          if (stateCursor !== undefined) expect(decodeServiceConnectionsCursor(stateCursor, service, s)).toEqual(servicePositions);
          if (queueCursor === undefined) expect(queuePositions.every((p) => p.kind === 'done')).toBe(true);
          else expect(decodeQueueCursor(queueCursor, s)).toEqual(queuePositions);
        },
      ),
    );
  });

  it('refuses a real cursor of another listing, another service or another state', () => {
    const other = 'vpce-svc-0fedcba9876543210';
    const endpoint = 'vpce-0123456789abcdef0';
    const positions = (shards: number, key: string, shard: number) =>
      Array.from({ length: shards }, (_, i): ShardPosition<string> => (i === shard ? { kind: 'after', key } : { kind: 'start' }));
    const serviceCursor = encodeShardedCursor(serviceListing(SERVICE), positions(CONNECTION_SHARDS, endpoint, shardOf(endpoint, CONNECTION_SHARDS))) ?? '';
    const stateCursor = encodeShardedCursor(serviceListing(SERVICE, 'deleted'), positions(CONNECTION_SHARDS, endpoint, shardOf(endpoint, CONNECTION_SHARDS))) ?? '';

    expect(() => decodeServiceConnectionsCursor(serviceCursor, other)).toThrow(ValidationError);
    expect(() => decodeServiceConnectionsCursor(stateCursor, SERVICE, 'available')).toThrow(ValidationError);
    expect(() => decodeServiceConnectionsCursor(stateCursor, SERVICE)).toThrow(ValidationError);
    expect(() => decodePolicyVersionsCursor(serviceCursor, SERVICE)).toThrow(ValidationError);
    expect(() => decodeQueueCursor(serviceCursor, 'pendingAcceptance')).toThrow(ValidationError);
  });

  it('refuses a key in a shard it does not belong to, and a cursor from before the connections were sharded', () => {
    const endpoint = 'vpce-0123456789abcdef0';
    const wrongShard = (shardOf(endpoint, CONNECTION_SHARDS) + 1) % CONNECTION_SHARDS;
    const misplaced = asCursor({ listing: serviceListing(SERVICE), after: { [wrongShard]: endpoint }, done: [] });
    const beforeSharding = encodeCursor(keys.legacyConnection(SERVICE, endpoint));
    const queueBeforeSharding = encodeCursor({ gsi1pk: 'STATE#pendingAcceptance', gsi1sk: `2024-01-01T00:00:00.000Z#${SERVICE}#${endpoint}`, ...keys.legacyConnection(SERVICE, endpoint) });

    expect(() => decodeServiceConnectionsCursor(misplaced, SERVICE)).toThrow(ValidationError);
    expect(() => decodeServiceConnectionsCursor(beforeSharding, SERVICE)).toThrow(ValidationError);
    expect(() => decodeQueueCursor(queueBeforeSharding, 'pendingAcceptance')).toThrow(ValidationError);
  });
});
