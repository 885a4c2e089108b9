import { CONNECTION_STATES } from '../domain/connection';
import { ENDPOINT_ID, SERVICE_ID } from '../domain/ids';
import { ValidationError } from '../errors';
import { type ShardPosition, shardOf } from './shards';
import { CONNECTION_SHARDS, keys, QUEUE_SHARDS } from './table';

/**
 * Paging cursors, as base64url JSON: the DynamoDB key a page stopped at (policy
 * versions), or for a listing spread over shards, where each shard stands. A
 * cursor is accepted back only if it is exactly what this module would have
 * issued for the listing being continued: every key is rebuilt from ids in their
 * AWS formats, checked to belong to its shard, and compared. So a forged or
 * edited cursor, or one issued before the connections were sharded, is a 400,
 * never a key DynamoDB refuses (a 500).
 */

export interface Page<T> {
  items: T[];
  /** Opaque; absent on the last page. */
  cursor?: string;
}

/** The longest cursor any listing issues (the queue's, a key for each of its shards) is well under this. */
const MAX_CURSOR_LENGTH = 2048;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
const VERSION_SORT_KEY = /^V#(\d{10})$/;

/** A key as a cursor. */
export function encodeCursor(key: Record<string, unknown>): string {
  const ordered = Object.fromEntries(Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return Buffer.from(JSON.stringify(ordered)).toString('base64url');
}

/** The key a GET /policies/{policyId}/versions page stopped at. */
export function decodePolicyVersionsCursor(cursor: string, policyId: string): Record<string, string> {
  const key = decodeKey(cursor, ['pk', 'sk']);
  const version = VERSION_SORT_KEY.exec(key.sk ?? '')?.[1];
  return requireIssued(key, version === undefined ? undefined : keys.policyVersion(policyId, Number(version)));
}

/**
 * Where a listing spread over shards stands: for each shard, the key it was read
 * up to, or that it was read to its end (a shard named in neither has not been
 * read yet). The listing is named in the cursor, so that one listing's cursor is
 * refused by another.
 */
interface ShardedCursor {
  listing: string;
  after: Record<string, string>;
  done: number[];
}

/** A listing's positions as a cursor; undefined when every shard was read to its end. */
export function encodeShardedCursor(listing: string, positions: readonly ShardPosition<string>[]): string | undefined {
  if (positions.every((position) => position.kind === 'done')) return undefined;
  const cursor: ShardedCursor = { listing, after: {}, done: [] };
  positions.forEach((position, shard) => {
    if (position.kind === 'after') cursor.after[String(shard)] = position.key;
    if (position.kind === 'done') cursor.done.push(shard);
  });
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** Where a page of one service's connections stopped, shard by shard (by endpoint id). */
export function decodeServiceConnectionsCursor(cursor: string, serviceId: string, state?: string): ShardPosition<string>[] {
  return decodeShardedCursor(cursor, serviceListing(serviceId, state), CONNECTION_SHARDS, (endpointId, shard) => isEndpointOfShard(endpointId, CONNECTION_SHARDS, shard));
}

/** Where a page of the queue (one state across services, byStateShard) stopped, shard by shard: `<createdAt>#<serviceId>#<endpointId>`. */
export function decodeQueueCursor(cursor: string, state: string): ShardPosition<string>[] {
  if (!CONNECTION_STATES.some((known) => known === state)) throw notIssued();
  return decodeShardedCursor(cursor, queueListing(state), QUEUE_SHARDS, (key, shard) => {
    const [createdAt = '', serviceId = '', endpointId = '', ...rest] = key.split('#');
    return !rest.length && ISO_TIMESTAMP.test(createdAt) && SERVICE_ID.test(serviceId) && isEndpointOfShard(endpointId, QUEUE_SHARDS, shard);
  });
}

/** The name a cursor gives one service's listing (in every state, or in one). */
export function serviceListing(serviceId: string, state?: string): string {
  return state === undefined ? `connections:${serviceId}` : `connections:${serviceId}:${state}`;
}

/** The name a cursor gives the queue of one state. */
export function queueListing(state: string): string {
  return `queue:${state}`;
}

function isEndpointOfShard(endpointId: string, shards: number, shard: number): boolean {
  return ENDPOINT_ID.test(endpointId) && shardOf(endpointId, shards) === shard;
}

/** A sharded listing's positions, when the cursor is exactly one this module issued for this listing; else a 400. */
function decodeShardedCursor(cursor: string, listing: string, shards: number, validKey: (key: string, shard: number) => boolean): ShardPosition<string>[] {
  const parsed = parseCursor(cursor);
  if (!isShardedCursor(parsed) || parsed.listing !== listing) throw notIssued();
  const positions: ShardPosition<string>[] = Array.from({ length: shards }, () => ({ kind: 'start' }));
  for (const [shardText, key] of Object.entries(parsed.after)) {
    const shard = Number(shardText);
    if (!/^(0|[1-9]\d*)$/.test(shardText) || shard >= shards || !validKey(key, shard)) throw notIssued();
    positions[shard] = { kind: 'after', key };
  }
  for (const shard of parsed.done) {
    if (!Number.isInteger(shard) || shard < 0 || shard >= shards || positions[shard]?.kind !== 'start') throw notIssued();
    positions[shard] = { kind: 'done' };
  }
  if (encodeShardedCursor(listing, positions) !== cursor) throw notIssued();
  return positions;
}

function isShardedCursor(value: unknown): value is ShardedCursor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { listing, after, done, ...rest } = value as Record<string, unknown>;
  return (
    Object.keys(rest).length === 0 &&
    typeof listing === 'string' &&
    typeof after === 'object' &&
    after !== null &&
    !Array.isArray(after) &&
    Object.values(after).every((key) => typeof key === 'string') &&
    Array.isArray(done) &&
    done.every((shard) => typeof shard === 'number')
  );
}

function parseCursor(cursor: string): unknown {
  if (cursor.length > MAX_CURSOR_LENGTH) throw notIssued();
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw notIssued();
  }
}

/** A cursor's key: an object of exactly these string attributes, encoded exactly as encodeCursor encodes it. */
function decodeKey(cursor: string, attributes: string[]): Partial<Record<string, string>> {
  const key = parseCursor(cursor);
  if (typeof key !== 'object' || key === null || Array.isArray(key)) throw notIssued();
  const entries = Object.entries(key);
  const shaped =
    entries.length === attributes.length &&
    attributes.every((name) => typeof (key as Record<string, unknown>)[name] === 'string') &&
    encodeCursor(key as Record<string, unknown>) === cursor;
  if (!shaped) throw notIssued();
  return key as Partial<Record<string, string>>;
}

/** The key, when it is the one rebuilt from the ids it names; else a 400. */
function requireIssued(key: Partial<Record<string, string>>, rebuilt: Record<string, string> | undefined): Record<string, string> {
  if (!rebuilt || encodeCursor(rebuilt) !== encodeCursor(key)) throw notIssued();
  return rebuilt;
}

function notIssued(): ValidationError {
  return new ValidationError('the cursor is not one this API issued for this listing: start again without it');
}
