import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, eventTypesFor, type LocalStack } from './local-stack';

// A crash after EC2 acted, inside a batch from the queue. Deployed, a failed batch is
// back after the queue's visibility timeout (180 s), well after the decision lease
// (45 s) that the dead invocation's claims hold, so the redelivery finishes those
// claims from EC2's state. Here the same order, shortened: lease 4 s, visibility 6 s.

const ALLOWED = '111122223333';
const LEASE_SECONDS = 4;

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' } },
    functionTimeoutMs: 2_000,
    visibilityTimeoutMs: 6_000,
    env: { DECISION_LEASE_SECONDS: String(LEASE_SECONDS) },
  });
});

afterAll(async () => {
  await stack?.stop();
});

async function statesOf(serviceId: string): Promise<string[]> {
  return (await stack.listEndpoints(serviceId)).map((endpoint) => endpoint.state);
}

async function acceptCalls(endpointId: string): Promise<number> {
  const accepts = (await stack.calls()).byEndpoint[endpointId]?.AcceptVpcEndpointConnections;
  return (accepts?.received ?? 0) - (accepts?.failed ?? 0);
}

describe('a crash after EC2 acted, inside a batch', () => {
  it('is finished when the batch comes back from the queue: each connection recorded, no second Accept', async () => {
    const { serviceId } = await stack.createService();
    await stack.faults({ crashAfterEc2Call: 1 });
    const endpoints = await Promise.all([1, 2, 3].map(() => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })));
    const ids = endpoints.map((e) => e.vpcEndpointId);
    // EC2 accepts them; the invocation dies before the table hears of it.
    await stack.waitFor(async () => (await statesOf(serviceId)).every((state) => state !== 'pendingAcceptance'), { description: 'EC2 to accept' });
    await stack.faults({});

    await stack.waitFor(
      async () => (await Promise.all(ids.map((id) => stack.record(serviceId, id)))).every((r) => r?.decision?.acted) && (await stack.idle()),
      { timeoutMs: 30_000, description: 'every connection recorded as accepted' },
    );

    expect((await stack.invocations()).some((invocation) => !invocation.ok)).toBe(true); // the crashed one
    for (const id of ids) {
      expect(await acceptCalls(id)).toBe(1);
      const record = await stack.record(serviceId, id);
      expect(record?.claim).toBeUndefined();
      expect(record?.decision).toMatchObject({ outcome: 'accept', acted: true, rule: 'allow:acme-prod' });
      expect(record?.history.filter((event) => event.type === 'decision')).toHaveLength(1);
      expect(eventTypesFor(await stack.outbox(), id)).toEqual(['accepted']);
    }
    expect(await stack.dlq()).toEqual([]);
  });
});
