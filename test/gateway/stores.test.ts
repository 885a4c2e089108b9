import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { getConnection, getConnections, listConnectionsByState, listConnectionsOfService, putConnection } from '../../lib/aws/connection-store';
import { getLatestPolicyVersion, listPolicyVersions, putPolicy } from '../../lib/aws/policy-store';
import type { ConnectionRecord } from '../../lib/domain/connection';
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
