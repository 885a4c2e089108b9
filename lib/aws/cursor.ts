import { CONNECTION_STATES } from '../domain/connection';
import { ENDPOINT_ID, SERVICE_ID } from '../domain/ids';
import { ValidationError } from '../errors';
import { keys } from './table';

/**
 * Paging cursors: the DynamoDB key a page stopped at, as base64url JSON with its
 * attributes in a fixed order. A cursor is accepted back only if it is exactly
 * what this module would have issued for the listing being continued: every
 * attribute is rebuilt from ids in their AWS formats and compared. So a forged
 * or edited cursor is a 400, never a key DynamoDB refuses (a 500).
 */

export interface Page<T> {
  items: T[];
  /** Opaque; absent on the last page. */
  cursor?: string;
}

/** The longest cursor any listing issues is well under this. */
const MAX_CURSOR_LENGTH = 1024;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
const VERSION_SORT_KEY = /^V#(\d{10})$/;
const ENDPOINT_SORT_KEY = /^EP#(.*)$/s;

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

/** The key a page of one service's connections stopped at (its partition, by endpoint id). */
export function decodeServiceConnectionsCursor(cursor: string, serviceId: string): Record<string, string> {
  const key = decodeKey(cursor, ['pk', 'sk']);
  const endpointId = ENDPOINT_SORT_KEY.exec(key.sk ?? '')?.[1];
  return requireIssued(key, endpointId !== undefined && ENDPOINT_ID.test(endpointId) ? keys.connection(serviceId, endpointId) : undefined);
}

/** The key a page of one service's connections in one state stopped at (the byServiceState index). */
export function decodeServiceStateCursor(cursor: string, serviceId: string, state: string): Record<string, string> {
  const key = decodeKey(cursor, ['pk', 'sk', 'state']);
  const endpointId = ENDPOINT_SORT_KEY.exec(key.sk ?? '')?.[1];
  return requireIssued(
    key,
    endpointId !== undefined && ENDPOINT_ID.test(endpointId) ? { ...keys.connection(serviceId, endpointId), state } : undefined,
  );
}

/** The key a page of the queue (the byState index, across services) stopped at. */
export function decodeQueueCursor(cursor: string, state: string): Record<string, string> {
  const key = decodeKey(cursor, ['gsi1pk', 'gsi1sk', 'pk', 'sk']);
  const [createdAt = '', serviceId = '', endpointId = '', ...rest] = (key.gsi1sk ?? '').split('#');
  const wellFormed =
    CONNECTION_STATES.some((known) => known === state) &&
    !rest.length &&
    ISO_TIMESTAMP.test(createdAt) &&
    SERVICE_ID.test(serviceId) &&
    ENDPOINT_ID.test(endpointId);
  return requireIssued(
    key,
    wellFormed
      ? { ...keys.byState(state), ...keys.byStateSort(createdAt, serviceId, endpointId), ...keys.connection(serviceId, endpointId) }
      : undefined,
  );
}

/** A cursor's key: an object of exactly these string attributes, encoded exactly as encodeCursor encodes it. */
function decodeKey(cursor: string, attributes: string[]): Partial<Record<string, string>> {
  if (cursor.length > MAX_CURSOR_LENGTH) throw notIssued();
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw notIssued();
  }
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
