import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodePolicyVersionsCursor,
  decodeQueueCursor,
  decodeServiceConnectionsCursor,
  decodeServiceStateCursor,
  encodeCursor,
} from '../../lib/aws/cursor';
import { keys } from '../../lib/aws/table';
import { CONNECTION_STATES } from '../../lib/domain/connection';
import { ValidationError } from '../../lib/errors';

// The paging cursor decoder refuses anything it did not issue: whatever the
// input, it either throws ValidationError (a 400) or returns exactly the key it
// would have issued, rebuilt from ids in their AWS formats, which DynamoDB accepts.

const SERVICE = 'vpce-svc-0123456789abcdef0';
const hex = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${min},${max}}$`));
const serviceId = hex(8, 17).map((h) => `vpce-svc-${h}`);
const endpointId = hex(8, 17).map((h) => `vpce-${h}`);
const state = fc.constantFrom(...CONNECTION_STATES);
const timestamp = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2999-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString());

const decoders: [string, (cursor: string) => Record<string, string>][] = [
  ['policy versions', (cursor) => decodePolicyVersionsCursor(cursor, SERVICE)],
  ["a service's connections", (cursor) => decodeServiceConnectionsCursor(cursor, SERVICE)],
  ["a service's connections in one state", (cursor) => decodeServiceStateCursor(cursor, SERVICE, 'deleted')],
  ['the queue', (cursor) => decodeQueueCursor(cursor, 'pendingAcceptance')],
];

const asCursor = (value: unknown) => Buffer.from(JSON.stringify(value) ?? '').toString('base64url');
/** Key-shaped objects: the attribute names listings use, with any strings (empty, huge, unicode) or other values. */
const keyShaped = fc.dictionary(
  fc.constantFrom('pk', 'sk', 'state', 'gsi1pk', 'gsi1sk', 'other'),
  fc.oneof(fc.string(), fc.string({ unit: 'grapheme', maxLength: 3000 }), fc.constant(''), fc.integer(), fc.constant(null)),
);
/** Cursors as they come: any text, any JSON, key-shaped JSON, and the prefix of a real key with anything after it. */
const anyCursor = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 2000 }),
  fc.json().map(asCursor),
  keyShaped.map(asCursor),
  fc.string().map((tail) => asCursor({ pk: `CONN#${SERVICE}`, sk: `EP#${tail}` })),
  fc.string().map((tail) => asCursor({ pk: `POLICY#${SERVICE}`, sk: `V#${tail}` })),
  fc.tuple(fc.string(), fc.string()).map(([at, rest]) => asCursor({ gsi1pk: 'STATE#pendingAcceptance', gsi1sk: `${at}#${rest}`, pk: 'x', sk: 'y' })),
);

describe('the paging cursor decoder', () => {
  it.each(decoders)('for %s, refuses (ValidationError) whatever it did not issue, and returns only keys it would issue', (_, decode) => {
    fc.assert(
      fc.property(anyCursor, (cursor) => {
        let key: Record<string, string>;
        try {
          key = decode(cursor);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          return;
        }
        expect(encodeCursor(key)).toBe(cursor);
        expect(Object.values(key).every((value) => value.length > 0 && value.length < 200)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts back every cursor it issues, as the same key', () => {
    fc.assert(
      fc.property(serviceId, endpointId, state, timestamp, fc.integer({ min: 1, max: 9_999_999_999 }), (service, endpoint, s, createdAt, version) => {
        const policyKey = keys.policyVersion(service, version);
        const serviceKey = keys.connection(service, endpoint);
        const stateKey = { ...keys.connection(service, endpoint), state: s };
        const queueKey = { ...keys.byState(s), ...keys.byStateSort(createdAt, service, endpoint), ...keys.connection(service, endpoint) };

        expect(decodePolicyVersionsCursor(encodeCursor(policyKey), service)).toEqual(policyKey);
        expect(decodeServiceConnectionsCursor(encodeCursor(serviceKey), service)).toEqual(serviceKey);
        expect(decodeServiceStateCursor(encodeCursor(stateKey), service, s)).toEqual(stateKey);
        expect(decodeQueueCursor(encodeCursor(queueKey), s)).toEqual(queueKey);
      }),
    );
  });

  it("refuses a real cursor of another listing, another service or another state", () => {
    const other = 'vpce-svc-0fedcba9876543210';
    const serviceKey = encodeCursor(keys.connection(SERVICE, 'vpce-0123456789abcdef0'));
    const stateKey = encodeCursor({ ...keys.connection(SERVICE, 'vpce-0123456789abcdef0'), state: 'deleted' });

    expect(() => decodeServiceConnectionsCursor(serviceKey, other)).toThrow(ValidationError);
    expect(() => decodeServiceStateCursor(stateKey, SERVICE, 'available')).toThrow(ValidationError);
    expect(() => decodePolicyVersionsCursor(serviceKey, SERVICE)).toThrow(ValidationError);
    expect(() => decodeQueueCursor(serviceKey, 'pendingAcceptance')).toThrow(ValidationError);
  });

  it('refuses the forged sort keys that made DynamoDB fail the Query: empty and oversized', () => {
    for (const sk of ['', 'EP#', `EP#vpce-${'a'.repeat(2000)}`, 'V#', `V#${'9'.repeat(2000)}`]) {
      for (const [, decode] of decoders) expect(() => decode(asCursor({ pk: `CONN#${SERVICE}`, sk }))).toThrow(ValidationError);
    }
  });
});
