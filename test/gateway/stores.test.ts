import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  getConnection,
  getConnectionWithHistory,
  getConnections,
  listConnectionsByState,
  listConnectionsOfService,
  connectionRecords,
  putConnection,
} from '../../lib/aws/connection-store';
import { countConnectionsByState } from '../../lib/aws/connection-counts';
import { HISTORY_KEPT } from '../../lib/aws/table';
import { getLatestPolicyVersion, listPolicyVersions, putPolicy } from '../../lib/aws/policy-store';
import type { ConnectionRecord, HistoryEvent } from '../../lib/domain/connection';
import { parsePolicy } from '../../lib/domain/policy';
import { ConflictError, ValidationError } from '../../lib/errors';
import { newEndpointId, newServiceId } from '../support/fake-ec2';

function record(serviceId: string, overrides: Partial<ConnectionRecord> = {}): ConnectionRecord {
  const at = new Date().toISOString();
  return {
    serviceId,
    endpointId: newEndpointId(),
    ownerAccountId: '111122223333',
    region: 'us-east-1',
    state: 'pendingAcceptance',
    createdAt: at,
    updatedAt: at,
    version: 1,
    history: [{ at, type: 'first-seen', state: 'pendingAcceptance', source: 'test' }],
    ...overrides,
  };
}

describe('connection store', () => {
  it('round-trips a record and reads several at once', async () => {
    const serviceId = newServiceId();
    const first = record(serviceId);
    const second = record(serviceId);
    await putConnection(first, undefined);
    await putConnection(second, undefined);

    expect(await getConnection(serviceId, first.endpointId)).toEqual(first);
    const both = await getConnections([first, second, record(serviceId)]);
    expect([...both.keys()].sort()).toEqual([first.endpointId, second.endpointId].sort());
  });

  it('refuses a write based on a version that is no longer current', async () => {
    const first = record(newServiceId());
    await putConnection(first, undefined);
    await putConnection({ ...first, state: 'pending', version: 2 }, 1);

    await expect(putConnection({ ...first, state: 'rejected', version: 2 }, 1)).rejects.toBeInstanceOf(ConflictError);
    await expect(putConnection(first, undefined)).rejects.toBeInstanceOf(ConflictError);
    expect((await getConnection(first.serviceId, first.endpointId))?.state).toBe('pending');
  });

  it('lists a state across services with a Query, page by page', async () => {
    const state = 'partial'; // a state no other test writes, so the listing is this test's alone
    const written = [record(newServiceId(), { state }), record(newServiceId(), { state }), record(newServiceId(), { state })];
    for (const r of written) await putConnection(r, undefined);

    const first = await listConnectionsByState(state, { limit: 2 });
    const second = await listConnectionsByState(state, { limit: 2, cursor: first.cursor });

    expect(first.items).toHaveLength(2);
    expect(first.cursor).toBeTypeOf('string');
    const seen = [...first.items, ...second.items].map((r) => r.endpointId).sort();
    expect(seen).toEqual(written.map((r) => r.endpointId).sort());
    await expect(listConnectionsByState(state, { limit: 2, cursor: 'garbage' })).rejects.toBeInstanceOf(ValidationError);
  });
});

describe("one service's connections in one state", () => {
  it('pages through the byServiceState index, each connection of that state exactly once, and no other', async () => {
    const serviceId = newServiceId();
    const available = Array.from({ length: 5 }, () => record(serviceId, { state: 'available' }));
    const others = [record(serviceId, { state: 'rejected' }), record(newServiceId(), { state: 'available' })];
    for (const r of [...available, ...others]) await putConnection(r, undefined);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listConnectionsOfService(serviceId, { state: 'available', limit: 2, cursor });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((r) => r.endpointId));
      cursor = page.cursor;
    } while (cursor);

    expect(seen.sort()).toEqual(available.map((r) => r.endpointId).sort());
  });
});

/** Every page of a listing, until it has no cursor. */
async function allPages<T>(list: (cursor: string | undefined) => Promise<{ items: T[]; cursor?: string }>, limit: number): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    pages.push(page.items);
    cursor = page.cursor;
  } while (cursor);
  return pages;
}

describe('connections spread over partitions', () => {
  it("lists a service's connections by endpoint id across its partitions, each once, page after page", async () => {
    const serviceId = newServiceId();
    const written = Array.from({ length: 40 }, () => record(serviceId, { state: 'available' }));
    for (const r of written) await putConnection(r, undefined);

    const pages = await allPages((cursor) => listConnectionsOfService(serviceId, { limit: 7, cursor }), 7);

    expect(pages.flat().map((r) => r.endpointId)).toEqual(written.map((r) => r.endpointId).sort());
    expect(pages[0]).toHaveLength(7);
  });

  it('lists a state across services oldest first, across the partitions of the queue', async () => {
    const state = 'expired'; // a state no other test writes
    const start = Date.parse('2024-03-01T00:00:00.000Z');
    const written = Array.from({ length: 30 }, (_, i) => record(newServiceId(), { state, createdAt: new Date(start + (i * 7919) % 30 * 1000).toISOString() }));
    for (const r of written) await putConnection(r, undefined);

    const pages = await allPages((cursor) => listConnectionsByState(state, { limit: 4, cursor }), 4);

    const byAge = [...written].sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map((r) => r.endpointId);
    expect(pages.flat().map((r) => r.endpointId)).toEqual(byAge);
  });

  it('lists the queue with what a list shows of each connection, its decision, pending action and history, without its bookkeeping', async () => {
    const state = 'failed'; // a state no other test writes
    const at = '2024-03-02T00:00:00.000Z';
    const listed = record(newServiceId(), { state, createdAt: at });
    const claimed: ConnectionRecord = {
      ...listed,
      decision: { outcome: 'hold', acted: false, rule: 'onUnmatched:hold', reason: 'no rule matched', decidedBy: 'policy', decidedAt: at },
      claim: { token: 'claim-1', outcome: 'reject', from: 'pendingAcceptance', rule: 'approver', reason: 'ticket SEC-1', decidedBy: 'arn:aws:iam::111122223333:role/Approver', status: 'acting', leaseUntil: at, outcomeEventId: 'event-1' },
      outbox: [{ eventId: 'event-0', eventType: 'held', occurredAt: at, serviceId: listed.serviceId, endpointId: listed.endpointId } as never],
    };
    await putConnection(claimed, undefined);

    const [page] = await allPages((cursor) => listConnectionsByState(state, { limit: 5, cursor }), 5);

    const { version: _version, outbox: _outbox, ...shown } = claimed;
    expect(page).toEqual([shown]);
  });

  it(`keeps a record's latest ${HISTORY_KEPT} history entries in it, and its whole history readable in order`, async () => {
    const first = record(newServiceId());
    await putConnection(first, undefined);
    let current = first;
    const entry = (i: number): HistoryEvent => ({ at: new Date(Date.parse(first.createdAt) + i * 1000).toISOString(), type: 'reminded', pendingSince: first.createdAt });
    for (let i = 1; i <= 25; i++) {
      const next = { ...current, version: current.version + 1, history: [...current.history, entry(i)] };
      await putConnection(next, current.version);
      current = (await getConnection(first.serviceId, first.endpointId)) as ConnectionRecord;
    }

    const whole = await getConnectionWithHistory(first.serviceId, first.endpointId);

    expect(current.history).toHaveLength(HISTORY_KEPT);
    expect(current.history.at(-1)).toEqual(entry(25));
    expect(whole?.history).toEqual([...first.history, ...Array.from({ length: 25 }, (_, i) => entry(i + 1))]);
  });
});

describe('counts by state', () => {
  it('counts every change of state exactly once, with many writers at once and some of them losing their race', async () => {
    const [one, two] = [newServiceId(), newServiceId()];
    const records = [...Array.from({ length: 30 }, () => record(one)), ...Array.from({ length: 12 }, () => record(two))];
    await Promise.all(records.map((r) => putConnection(r, undefined)));
    // Two writers for each of the first 10 records of service one: the first to write wins, the other is refused.
    const races = records.slice(0, 10).flatMap((r) => [
      putConnection({ ...r, state: 'pending', version: 2 }, 1),
      putConnection({ ...r, state: 'rejected', version: 2 }, 1),
    ]);
    const outcomes = await Promise.allSettled(races);

    const counts = await countConnectionsByState([one, two, newServiceId()]);

    const moved = await getConnections(records.slice(0, 10));
    const pending = [...moved.values()].filter((r) => r.state === 'pending').length;
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(10);
    expect(counts.get(one)).toEqual({ pendingAcceptance: 20, ...(pending ? { pending } : {}), ...(10 - pending ? { rejected: 10 - pending } : {}) });
    expect(counts.get(two)).toEqual({ pendingAcceptance: 12 });
    expect([...counts.values()][2]).toEqual({});
  });

  it("counts the engine's writes in one write per service, and a write that failed with the next", async () => {
    // A client of its own, whose count writes are seen (and, while `refuse` is set, refused as DynamoDB does when throttled).
    const db = DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 1 }));
    let countWrites = 0;
    let refuse = false;
    db.middlewareStack.add(
      (next) => async (args) => {
        if ('UpdateExpression' in (args.input as object)) {
          countWrites += 1;
          if (refuse) throw Object.assign(new Error('Throughput exceeds the current capacity'), { name: 'ProvisionedThroughputExceededException' });
        }
        return next(args);
      },
      { step: 'initialize' },
    );
    const records = connectionRecords(db);
    const [one, two] = [newServiceId(), newServiceId()];
    const written = [...Array.from({ length: 20 }, () => record(one)), ...Array.from({ length: 5 }, () => record(two))];
    await Promise.all(written.map((r) => records.put(r, undefined)));
    await Promise.all(written.slice(0, 8).map((r) => records.put({ ...r, state: 'available', version: 2 }, 1)));
    expect(countWrites).toBe(0);

    refuse = true;
    await expect(records.writeCounts()).rejects.toThrow('Throughput exceeds');
    refuse = false;
    expect(await countConnectionsByState([one, two], db)).toEqual(new Map([[one, {}], [two, {}]]));

    await records.writeCounts();

    expect(countWrites).toBe(4);
    expect(await countConnectionsByState([one, two], db)).toEqual(
      new Map([
        [one, { pendingAcceptance: 12, available: 8 }],
        [two, { pendingAcceptance: 5 }],
      ]),
    );
    db.destroy();
  });
});

describe('policy store', () => {
  const allowAcme = parsePolicy({ allow: [{ account: '111122223333', label: 'acme' }] });

  it('writes versions and keeps every one', async () => {
    const id = newServiceId();
    await putPolicy(id, allowAcme, { actor: 'alice' });
    await putPolicy(id, { ...allowAcme, mode: 'manual' }, { actor: 'bob', expectedVersion: 1 });

    expect(await getLatestPolicyVersion(id)).toMatchObject({ version: 2, createdBy: 'bob', valid: true, policy: { mode: 'manual' } });
    expect((await listPolicyVersions(id, { limit: 25 })).items.map((v) => [v.version, v.createdBy])).toEqual([
      [2, 'bob'],
      [1, 'alice'],
    ]);
  });

  it('refuses a change based on a stale version', async () => {
    const id = newServiceId();
    await putPolicy(id, allowAcme, { actor: 'alice' });
    await putPolicy(id, allowAcme, { actor: 'bob', expectedVersion: 1 });

    await expect(putPolicy(id, allowAcme, { actor: 'carol', expectedVersion: 1 })).rejects.toBeInstanceOf(ConflictError);
    expect((await getLatestPolicyVersion(id))?.version).toBe(2);
  });

  it('lets exactly one of two simultaneous writers win', async () => {
    const id = newServiceId();
    const results = await Promise.allSettled([
      putPolicy(id, allowAcme, { actor: 'alice' }),
      putPolicy(id, allowAcme, { actor: 'bob' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: expect.any(ConflictError) });
  });
});
