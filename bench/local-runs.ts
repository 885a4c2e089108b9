import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  AcceptVpcEndpointConnectionsCommand,
  DescribeVpcEndpointConnectionsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { startLocalStack, type LocalStack } from '../test/e2e/local-stack';
import { keys } from '../lib/aws/table';
import { summarize, type Summary } from './stats';

// The figures that need the local stack: a burst of connection requests, the
// handler's latency one notification at a time, and the floor (the same AWS
// calls made directly with the SDK, with nothing else running).

export const ALLOWED_ACCOUNT = '111122223333';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface BurstResult {
  connections: number;
  duplicateDeliveries: number;
  /** From the first create to every connection accepted in EC2 and recorded in the table. */
  allDecidedMs: number;
  handlerMs: Summary;
  ec2CallsPerConnection: number;
  ec2CallsByAction: Record<string, number>;
  /** Successful Accept calls naming each endpoint: min and max over the endpoints. */
  acceptsPerConnection: { min: number; max: number };
  undecided: number;
  dynamodbRequestsPerConnection?: number;
}

export interface OverheadResult {
  notifications: number;
  handlerMs: Summary;
  floorMs: Summary;
  /** Handler p99 over floor p99, and the same for medians. */
  p99Ratio: number;
  medianRatio: number;
  callsPerNotification: { ec2: number; dynamodb?: number; sns: number };
}

export async function startBenchStack(): Promise<{ stack: LocalStack; table: DynamoDBDocumentClient; tableName: string }> {
  const stack = await startLocalStack({
    policy: { default: { mode: 'auto', allow: [{ account: ALLOWED_ACCOUNT, label: 'bench' }], onUnmatched: 'hold' } },
    acceptDelayMs: 200,
    env: { RECONCILE_INTERVAL_SECONDS: '0', POWERTOOLS_LOG_LEVEL: 'WARN' },
  });
  const health = await stack.health();
  const table = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: health.dynamodbEndpoint, region: 'us-east-1', credentials: CREDENTIALS }));
  return { stack, table, tableName: health.tableName };
}

/** Creates `count` endpoints for the allowed account, as concurrently as the stack allows. */
async function createEndpoints(stack: LocalStack, serviceId: string, count: number): Promise<string[]> {
  const many = await stack.request('POST', `/local/services/${serviceId}/endpoints`, { ownerAccountId: ALLOWED_ACCOUNT, count });
  if (many.status === 201) return (many.body as { vpcEndpointIds: string[] }).vpcEndpointIds;
  const ids: string[] = [];
  for (let i = 0; i < count; i += 100) {
    const wave = await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, () => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED_ACCOUNT })),
    );
    ids.push(...wave.map((e) => e.vpcEndpointId));
  }
  return ids;
}

/** How many of a service's connections the table records as accepted by an action. */
async function recordedAccepts(table: DynamoDBDocumentClient, tableName: string, serviceId: string): Promise<number> {
  let accepted = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await table.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': keys.connectionsOfService(serviceId).pk },
        ExclusiveStartKey: startKey,
      }),
    );
    accepted += (page.Items ?? []).filter((item) => item.decision?.outcome === 'accept' && item.decision?.acted).length;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return accepted;
}

async function idle(stack: LocalStack): Promise<boolean> {
  const { deliveries } = await stack.health();
  return deliveries.scheduled === 0 && deliveries.running === 0;
}

async function invocationTimes(stack: LocalStack): Promise<{ messageId: string; durationMs: number; ok: boolean }[]> {
  const response = await stack.request('GET', '/local/invocations');
  return (response.body as { invocations: { messageId: string; durationMs: number; ok: boolean }[] }).invocations;
}

async function dynamodbRequests(stack: LocalStack): Promise<number | undefined> {
  const response = await stack.request('GET', '/local/dynamodb-calls');
  if (response.status !== 200) return undefined;
  return (response.body as { total: number }).total;
}

function totalCalls(byAction: Record<string, { received: number }>): number {
  return Object.values(byAction).reduce((sum, count) => sum + count.received, 0);
}

/** Many consumers from allowed accounts at once, every notification delivered `duplicates` times. */
export async function measureBurst(stack: LocalStack, table: DynamoDBDocumentClient, tableName: string, connections: number, duplicates: number): Promise<BurstResult> {
  await stack.reset();
  await stack.faults({ duplicateDeliveries: duplicates });
  const { serviceId } = await stack.createService();
  const dynamoBefore = await dynamodbRequests(stack);
  const started = performance.now();
  const ids = await createEndpoints(stack, serviceId, connections);
  await stack.waitFor(async () => (await recordedAccepts(table, tableName, serviceId)) === connections, {
    timeoutMs: 600_000,
    intervalMs: 200,
    description: `all ${connections} connections accepted and recorded`,
  });
  const allDecidedMs = performance.now() - started;
  await stack.waitFor(() => idle(stack), { timeoutMs: 120_000, description: 'the stack to go idle' });

  const calls = await stack.calls();
  const accepts = ids.map((id) => {
    const count = calls.byEndpoint[id]?.AcceptVpcEndpointConnections;
    return (count?.received ?? 0) - (count?.failed ?? 0);
  });
  const endpoints = await stack.listEndpoints(serviceId);
  const dynamoAfter = await dynamodbRequests(stack);
  return {
    connections,
    duplicateDeliveries: duplicates,
    allDecidedMs,
    handlerMs: summarize((await invocationTimes(stack)).map((i) => i.durationMs)),
    ec2CallsPerConnection: totalCalls(calls.byAction) / connections,
    ec2CallsByAction: Object.fromEntries(Object.entries(calls.byAction).map(([action, count]) => [action, count.received])),
    acceptsPerConnection: { min: Math.min(...accepts), max: Math.max(...accepts) },
    undecided: endpoints.filter((e) => e.state === 'pendingAcceptance').length,
    dynamodbRequestsPerConnection:
      dynamoBefore === undefined || dynamoAfter === undefined ? undefined : (dynamoAfter - dynamoBefore) / connections,
  };
}

/**
 * The handler one Connect notification at a time, then the floor: the same AWS
 * calls, in the same order, made directly with the SDK against the same stack.
 */
export async function measureOverhead(stack: LocalStack, table: DynamoDBDocumentClient, tableName: string, notifications: number): Promise<OverheadResult> {
  await stack.reset();
  const { serviceId } = await stack.createService();
  const ec2Before = totalCalls((await stack.calls()).byAction);
  const dynamoBefore = await dynamodbRequests(stack);
  const connectIds = new Set<string>();
  for (let i = 0; i < notifications; i++) {
    await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED_ACCOUNT });
    await stack.waitFor(() => idle(stack), { intervalMs: 5, description: 'the notification to be handled' });
  }
  for (const message of await stack.notifications()) {
    if ((JSON.parse(message.message) as { eventType?: string }).eventType === 'Connect') connectIds.add(message.messageId);
  }
  const handlerMs = (await invocationTimes(stack)).filter((i) => connectIds.has(i.messageId)).map((i) => i.durationMs);
  const calls = await stack.calls();
  const dynamoAfter = await dynamodbRequests(stack);
  const snsPublished = (await stack.outbox()).length;

  const floorMs = await measureFloor(stack, tableName, serviceId, table, notifications);
  const handler = summarize(handlerMs);
  const floor = summarize(floorMs);
  return {
    notifications,
    handlerMs: handler,
    floorMs: floor,
    p99Ratio: handler.p99 / floor.p99,
    medianRatio: handler.median / floor.median,
    callsPerNotification: {
      ec2: (totalCalls(calls.byAction) - ec2Before) / notifications,
      dynamodb: dynamoBefore === undefined || dynamoAfter === undefined ? undefined : (dynamoAfter - dynamoBefore) / notifications,
      sns: snsPublished / notifications,
    },
  };
}

/**
 * What deciding one Connect costs in AWS calls alone, in the handler's order:
 * read the record, describe, read the policy (own, then
 * default), claim, accept, publish, record.
 * Made on endpoints whose notifications are not delivered, so that nothing else
 * runs. The per-notification call counts the benchmark prints show the handler
 * makes the same calls.
 */
async function measureFloor(stack: LocalStack, tableName: string, serviceId: string, table: DynamoDBDocumentClient, count: number): Promise<number[]> {
  const health = await stack.health();
  const ec2 = new EC2Client({ endpoint: health.ec2Endpoint, region: 'us-east-1', credentials: CREDENTIALS });
  const sns = new SNSClient({ endpoint: health.snsEndpoint, region: 'us-east-1', credentials: CREDENTIALS });
  const dropped = await stack.request('POST', '/local/faults', { dropNotifications: 1 });
  if (dropped.status !== 200) throw new Error('the floor needs the dropNotifications fault to keep the handler out of it');
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED_ACCOUNT })).vpcEndpointId);

  const times: number[] = [];
  for (const endpointId of ids) {
    const key = keys.connection(serviceId, endpointId);
    const started = performance.now();
    await table.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
    await ec2.send(new DescribeVpcEndpointConnectionsCommand({ Filters: [{ Name: 'service-id', Values: [serviceId] }, { Name: 'vpc-endpoint-id', Values: [endpointId] }], MaxResults: 1000 }));
    for (const policyId of [serviceId, 'default']) {
      await table.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': keys.policyVersions(policyId).pk }, ScanIndexForward: false, Limit: 1, ConsistentRead: true }));
    }
    const item = { ...key, serviceId, endpointId, state: 'pendingAcceptance', version: 1, history: [] as unknown[] };
    await table.send(new PutCommand({ TableName: tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [endpointId] }));
    await sns.send(new PublishCommand({ TopicArn: health.outboundTopicArn, Message: JSON.stringify({ eventType: 'accepted', endpointId }) }));
    await table.send(new PutCommand({ TableName: tableName, Item: { ...item, state: 'pending', version: 2 }, ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': 1 } }));
    times.push(performance.now() - started);
  }
  await stack.faults({});
  ec2.destroy();
  sns.destroy();
  return times;
}
