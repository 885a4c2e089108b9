import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eventTypesFor, startLocalStack, type LocalStack } from './local-stack';

// Notifications through the queue, under EC2's default rate limits: bursts decided
// in batches, partial batch failures, and what the event source mapping does with them.

const ALLOWED = '111122223333';

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' } },
    // Retries after 3 s instead of the deployed 180 s; a 2 s window (deployed: 1 s), so that the
    // Connects of a test land in one batch however slowly this machine creates them.
    visibilityTimeoutMs: 3_000,
    batchingWindowMs: 2_000,
  });
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

/** Successful Accept calls naming each endpoint (received minus those refused). */
async function successfulAccepts(endpointIds: string[]): Promise<number[]> {
  const calls = await stack.calls();
  return endpointIds.map((id) => {
    const count = calls.byEndpoint[id]?.AcceptVpcEndpointConnections;
    return (count?.received ?? 0) - (count?.failed ?? 0);
  });
}

/** The UpdateItem requests the table has received: the writes of the counts by state (records are put, not updated). */
async function countWrites(): Promise<number> {
  const { byOperation } = (await stack.request('GET', '/local/dynamodb-calls')).body as { byOperation: Record<string, number> };
  return byOperation.UpdateItem ?? 0;
}

async function allAccepted(serviceId: string, ids: string[]): Promise<boolean> {
  const states = new Map((await stack.listEndpoints(serviceId)).map((e) => [e.vpcEndpointId, e.state]));
  if (!ids.every((id) => states.get(id) === 'pending' || states.get(id) === 'available')) return false;
  const records = await Promise.all(ids.map((id) => stack.record(serviceId, id)));
  return records.every((record) => record?.decision?.acted);
}

describe('a burst through the queue', () => {
  it('decides 1,000 connections, each notification delivered twice, with one Accept each, no retry and a few dozen EC2 calls', async () => {
    await stack.faults({ duplicateDeliveries: 2 });
    const { serviceId } = await stack.createService();
    const countWritesBefore = await countWrites();

    const { vpcEndpointIds: ids } = await stack.createEndpoints(serviceId, { ownerAccountId: ALLOWED, count: 1000 });
    await stack.waitFor(async () => (await allAccepted(serviceId, ids)) && (await stack.idle()), {
      timeoutMs: 60_000,
      intervalMs: 500,
      description: 'all 1,000 accepted and recorded',
    });

    expect(new Set(await successfulAccepts(ids))).toEqual(new Set([1]));
    const invocations = await stack.invocations();
    expect(invocations.filter((i) => !i.ok)).toEqual([]);
    expect(invocations.reduce((sum, i) => sum + i.failedItems, 0)).toBe(0);
    expect(await stack.dlq()).toEqual([]);
    const calls = await stack.calls();
    const ec2Calls = Object.values(calls.byAction).reduce((sum, count) => sum + count.received, 0);
    expect(ec2Calls).toBeLessThanOrEqual(50); // the target: ≤ 0.05 per connection
    // The service is described once (for its policy tag) for every invocation at once, and its counts
    // by state are written once by each invocation that decided some of it, not once per record.
    expect(calls.byAction.DescribeVpcEndpointServiceConfigurations?.received).toBe(1);
    expect((await countWrites()) - countWritesBefore).toBeLessThanOrEqual(invocations.length);
    const outbox = await stack.outbox();
    expect(outbox.filter((m) => (m.message as { eventType: string }).eventType === 'accepted')).toHaveLength(1000);
  });

  it('decides each connection once when every notification arrives three times, shuffled', async () => {
    await stack.faults({ duplicateDeliveries: 3, shuffleDeliveries: true });
    const { serviceId } = await stack.createService();

    const { vpcEndpointIds: ids } = await stack.createEndpoints(serviceId, { ownerAccountId: ALLOWED, count: 200 });
    await stack.waitFor(async () => (await allAccepted(serviceId, ids)) && (await stack.idle()), {
      timeoutMs: 60_000,
      intervalMs: 250,
      description: 'all 200 accepted and recorded',
    });

    expect(new Set(await successfulAccepts(ids))).toEqual(new Set([1]));
    const outbox = await stack.outbox();
    for (const id of ids.slice(0, 20)) expect(eventTypesFor(outbox, id)).toEqual(['accepted']);
    expect((await stack.invocations()).filter((i) => !i.ok)).toEqual([]);
    expect(await stack.dlq()).toEqual([]);
  });
});

describe('a batch where some messages fail', () => {
  it('hands back only the messages EC2 failed on, and decides them when they come back', async () => {
    const { serviceId: healthy } = await stack.createService();
    const { serviceId: failing } = await stack.createService();
    await stack.faults({ ec2UnavailableFor: [failing] });

    // Within one batching window: one batch holds both services' Connects.
    const [fine, broken] = await Promise.all(
      [healthy, failing].map((serviceId) => Promise.all([1, 2, 3].map(() => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })))),
    );
    const fineIds = (fine ?? []).map((e) => e.vpcEndpointId);
    const brokenIds = (broken ?? []).map((e) => e.vpcEndpointId);
    await stack.waitFor(async () => (await allAccepted(healthy, fineIds)) && (await stack.invocations()).some((i) => i.failedItems > 0), {
      timeoutMs: 30_000,
      description: 'the healthy service decided, and item failures reported',
    });

    const [first] = (await stack.invocations()).filter((i) => i.failedItems > 0);
    expect(first?.ok).toBe(true);
    expect(first?.failedItems).toBeLessThan(first?.batchSize ?? 0); // the rest of that batch went through
    expect((await stack.listEndpoints(failing)).map((e) => e.state)).toEqual(['pendingAcceptance', 'pendingAcceptance', 'pendingAcceptance']);

    await stack.faults({});
    await stack.waitFor(async () => (await allAccepted(failing, brokenIds)) && (await stack.idle()), {
      timeoutMs: 30_000,
      description: 'the failed messages back after the visibility timeout, and decided',
    });

    expect(await successfulAccepts([...fineIds, ...brokenIds])).toEqual([1, 1, 1, 1, 1, 1]);
    expect((await stack.invocations()).filter((i) => !i.ok)).toEqual([]);
    expect(await stack.dlq()).toEqual([]);
  });
});
