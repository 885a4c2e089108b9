import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { queryAllItems } from '../../lib/aws/query';
import { CONNECTION_SHARDS, keys } from '../../lib/aws/table';
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
    // Without Slack: its notifier would post the 2,000 announcements for minutes after the burst
    // (Slack's rate limits), and its table reads would be counted with GET /services's.
    env: { LOCAL_SLACK: 'off' },
  });
  viewer = signedClient(stack.baseUrl, LOCAL_VIEWER);
});

afterAll(async () => {
  await stack?.stop();
});

/** How many of a service's records are in each state, read from the table itself, partition by partition. */
async function statesOfRecords(serviceId: string): Promise<Record<string, number>> {
  const { db, tableName } = await stack.table();
  const counts: Record<string, number> = {};
  for (let shard = 0; shard < CONNECTION_SHARDS; shard++) {
    const items = queryAllItems(db, {
      TableName: tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ep)',
      ExpressionAttributeValues: { ':pk': keys.connectionShard(serviceId, shard).pk, ':ep': 'EP#' },
      ConsistentRead: true,
    });
    for await (const item of items) counts[String(item.state)] = (counts[String(item.state)] ?? 0) + 1;
  }
  return counts;
}

const dynamodbCalls = async () => (await stack.request('GET', '/local/dynamodb-calls')).body as DynamodbCalls;

/** The DynamoDB calls once nothing has reached the table for a second (the burst's last writes are done). */
async function quietDynamodbCalls(): Promise<DynamodbCalls> {
  const deadline = Date.now() + 60_000;
  let last = await dynamodbCalls();
  for (;;) {
    await new Promise((done) => setTimeout(done, 1000));
    const now = await dynamodbCalls();
    if (now.total === last.total) return now;
    if (Date.now() > deadline) throw new Error(`the table was still busy after 60 s (${now.total - last.total} requests in the last second)`);
    last = now;
  }
}

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
    const beforeServices = await quietDynamodbCalls();
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
    // Announced once each: a publish whose record write was throttled out is made again, under the same eventId.
    const accepted = (await stack.outbox()).map((m) => m.message as { eventType: string; eventId: string; endpointId: string }).filter((m) => m.eventType === 'accepted');
    expect(new Set(accepted.map((m) => m.endpointId)).size).toBe(2000);
    expect(new Set(accepted.map((m) => m.eventId)).size).toBe(2000);
    // GET /services answers from the counts: a few requests, however many connections.
    const summary = (services.body as { services: { serviceId: string; connections: Record<string, number> }[] }).services.find((s) => s.serviceId === serviceId);
    expect(summary?.connections).toEqual(await statesOfRecords(serviceId));
    expect(Object.values(summary?.connections ?? {}).reduce((sum, n) => sum + n, 0)).toBe(2000);
    expect(afterServices.total - beforeServices.total).toBeLessThanOrEqual(5);
    // Spread over its partitions, the service's burst asked none of them for more than a second of its limit.
    const busiest = afterServices.hotPartitions.filter((partition) => partition.partitionKey.includes(serviceId));
    expect(busiest.length).toBeGreaterThan(0);
    expect(busiest.every((partition) => partition.writeUnits <= 1000)).toBe(true);
  });
});
