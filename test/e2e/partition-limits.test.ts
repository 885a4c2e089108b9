import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { LOCAL_VIEWER, signedClient } from './approvals-client';
import { startLocalStack, type LocalStack } from './local-stack';

// A burst under DynamoDB's per-partition limits (the dynamoPartitionLimits fault, on by
// default), with the deployed batch size and concurrency: the table's keys spread it, so
// that what throttling it meets is retried and nothing is lost or dead-lettered.

const ALLOWED = '111122223333';

interface DynamodbCalls {
  total: number;
  byOperation: Record<string, number>;
  throttledRequests: number;
  unprocessedItems: number;
  hotPartitions: { index?: string; partitionKey: string; writeUnits: number; throttled: number }[];
}

let stack: LocalStack;
let viewer: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' } },
    // The deployed function timeout is 30 s; on a busy 2-core machine a batch of 1,000 can take
    // longer for want of CPU, which is not what this test is about.
    functionTimeoutMs: 120_000,
  });
  viewer = signedClient(stack.baseUrl, LOCAL_VIEWER);
});

afterAll(async () => {
  await stack?.stop();
});

const dynamodbCalls = async () => (await stack.request('GET', '/local/dynamodb-calls')).body as DynamodbCalls;

describe("a burst under DynamoDB's partition limits", () => {
  it('decides 2,000 connections, each notification delivered twice, each accepted once, nothing dead-lettered, and counts them exactly', async () => {
    const faults = await stack.faults({ duplicateDeliveries: 2 });
    const { serviceId } = await stack.createService();

    const { vpcEndpointIds: ids } = await stack.createEndpoints(serviceId, { ownerAccountId: ALLOWED, count: 2000 });
    await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).every((e) => e.state !== 'pendingAcceptance') && (await stack.idle()), {
      timeoutMs: 300_000,
      intervalMs: 1000,
      description: 'all 2,000 decided',
    });
    const beforeServices = await dynamodbCalls();
    const services = await viewer.request('GET', '/services');
    const afterServices = await dynamodbCalls();

    expect(faults.dynamoPartitionLimits).toBe(true);
    const calls = await stack.calls();
    const accepts = ids.map((id) => {
      const count = calls.byEndpoint[id]?.AcceptVpcEndpointConnections;
      return (count?.received ?? 0) - (count?.failed ?? 0);
    });
    expect(new Set(accepts)).toEqual(new Set([1]));
    expect(await stack.dlq()).toEqual([]);
    const outbox = await stack.outbox();
    expect(outbox.filter((m) => (m.message as { eventType: string }).eventType === 'accepted')).toHaveLength(2000);
    // GET /services answers from the counts: a few requests, however many connections.
    expect((services.body as { services: { serviceId: string; connections: Record<string, number> }[] }).services).toContainEqual(
      expect.objectContaining({ serviceId, connections: { pending: 2000 } }),
    );
    expect(afterServices.total - beforeServices.total).toBeLessThanOrEqual(5);
    // Spread over its partitions, the service's burst asked none of them for more than a second of its limit.
    const busiest = afterServices.hotPartitions.filter((partition) => partition.partitionKey.includes(serviceId));
    expect(busiest.length).toBeGreaterThan(0);
    expect(busiest.every((partition) => partition.writeUnits <= 1000)).toBe(true);
  });
});
