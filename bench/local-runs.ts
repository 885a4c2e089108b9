import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AcceptVpcEndpointConnectionsCommand, DescribeVpcEndpointConnectionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { PublishBatchCommand, SNSClient } from '@aws-sdk/client-sns';
import { BatchGetCommand, DynamoDBDocumentClient, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import type { SQSEvent } from 'aws-lambda';
import { startLocalStack, type Health, type LocalStack } from '../test/e2e/local-stack';
import { LOCAL_VIEWER, signedClient } from '../test/e2e/approvals-client';
import { sqsRecord, type SqsLambdaHandler } from '../local/lambda/event-source-mapping';
import { md5 } from '../local/aws/sqs';
import { lambdaContext } from '../local/lambda/lambda-runtime';
import { ORGANIZATIONS_PATH, STS_PATH } from '../local/server';
import { CONNECTION_SHARDS, keys } from '../lib/aws/table';
import { queryAllItems } from '../lib/aws/query';
import { DEPLOYED_QUEUE_DEFAULTS } from '../local/lambda/deployed-defaults';
import { PARTITION_LIMITS, type MeterUsage, type PartitionUsage } from '../local/aws/dynamo-metering';
import { summarize, type Summary } from './stats';

// The figures that need the local stack: bursts of connection requests through
// the queue under EC2's default rate limits, one Connect on a quiet stack, the
// handler's time against the floor (the same AWS calls made directly), and how
// the batching window trades latency for calls.

export const ALLOWED_ACCOUNT = '111122223333';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface BurstResult {
  connections: number;
  duplicateDeliveries: number;
  /** How long creating the endpoints (publishing their Connects) took. */
  connectMs: number;
  /** From the last Connect published to every connection accepted in EC2 and recorded. */
  decidedAfterLastConnectMs: number;
  ec2Calls: { total: number; perConnection: number; byAction: Record<string, { received: number; failed: number }> };
  /** Successful Accept calls naming each endpoint: min and max over the endpoints. */
  acceptsPerConnection: { min: number; max: number };
  undecided: number;
  deadLetters: number;
  /** The notification function's invocations; `longestMs` against its 30 s timeout. */
  invocations: { total: number; failed: number; meanBatchSize: number; itemFailures: number; longestMs: number };
  dynamodbRequestsPerDecided: number;
  /** What DynamoDB's partitions carried during the burst (absent from runs before the local DynamoDB metered them). */
  dynamodb?: DynamoBurstFigures;
}

/** DynamoDB during a burst, from GET /local/dynamodb-calls. */
export interface DynamoBurstFigures {
  /** Whether DynamoDB's per-partition limits were on (the dynamoPartitionLimits fault). */
  partitionLimits: boolean;
  readUnits: number;
  writeUnits: number;
  /** Requests answered ProvisionedThroughputExceededException (the SDK retries them). */
  throttledRequests: number;
  /** Batch items handed back unprocessed (the caller sends them again). */
  unprocessedItems: number;
  /** The burst's requests by operation (GetItem, PutItem, UpdateItem, BatchGetItem, …), the bench's own included. */
  requestsByOperation: Record<string, number>;
  /** The bench's own requests among them (its Queries of the records, to see them recorded), left out of dynamodbRequestsPerDecided. */
  benchRequests?: number;
  /** The partitions that carried the most units, most first. */
  hotPartitions: PartitionUsage[];
  /** The least time the per-partition limits allow for what the busiest partition carried. */
  limitsAloneMs: number;
  /** GET /services once the burst is decided: the DynamoDB requests it made, and whether its counts sum to the burst. */
  servicesRead?: { dynamodbRequests: number; counted: number };
}

export interface QuietConnectResult {
  batchingWindowSeconds: number;
  /** From the Connect to its connection accepted and recorded. */
  decidedMs: Summary;
}

export interface OverheadResult {
  notifications: number;
  handlerMs: Summary;
  floorMs: Summary;
  /** Handler p99 over floor p99, and the same for medians. */
  p99Ratio: number;
  medianRatio: number;
  callsPerNotification: { ec2: number; dynamodb: number; sns: number };
}

export interface BenchStack {
  stack: LocalStack;
  /** The bench's own client of the stack's table. */
  table: DynamoDBDocumentClient;
  /** The requests the bench's own client has sent to the table (not the stack's). */
  ownRequests(): number;
  tableName: string;
  batchingWindowSeconds: number;
  batchSize: number;
  stop(): Promise<void>;
}

/**
 * The local stack as deployed by default (queue, event source mapping, rate
 * limits), except for the batching window when one is given. Retries take the
 * deployed delays (the 180 s visibility timeout): a burst that needs them does
 * not meet its target.
 */
export async function startBenchStack(
  {
    batchingWindowSeconds = DEPLOYED_QUEUE_DEFAULTS.batchingWindowSeconds,
    batchSize = DEPLOYED_QUEUE_DEFAULTS.batchSize,
    functionWorkers,
  }: { batchingWindowSeconds?: number; batchSize?: number; functionWorkers?: number } = {},
): Promise<BenchStack> {
  const stack = await startLocalStack({
    policy: { default: { mode: 'auto', allow: [{ account: ALLOWED_ACCOUNT, label: 'bench' }], onUnmatched: 'hold' } },
    acceptDelayMs: 200,
    visibilityTimeoutMs: 180_000,
    batchingWindowMs: batchingWindowSeconds * 1000,
    batchSize,
    // A stage as deployed by default: without Slack, whose notifier would read an item per decision.
    env: {
      RECONCILE_INTERVAL_SECONDS: '0',
      POWERTOOLS_LOG_LEVEL: 'WARN',
      LOCAL_SLACK: 'off',
      ...(functionWorkers === undefined ? {} : { LOCAL_FUNCTION_WORKERS: String(functionWorkers) }),
    },
  });
  const health = await stack.health();
  const table = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: health.dynamodbEndpoint, region: 'us-east-1', credentials: CREDENTIALS }));
  // The bench's own reads of the table reach the same DynamoDB: counted, so that the stack's figures leave them out.
  let ownRequests = 0;
  table.middlewareStack.add(
    (next) => (args) => {
      ownRequests += 1;
      return next(args);
    },
    { step: 'initialize', name: 'countBenchRequests' },
  );
  return {
    stack,
    table,
    ownRequests: () => ownRequests,
    tableName: health.tableName,
    batchingWindowSeconds,
    batchSize,
    stop: async () => {
      table.destroy();
      await stack.stop();
    },
  };
}

async function createEndpoints(stack: LocalStack, serviceId: string, count: number): Promise<string[]> {
  const response = await stack.request('POST', `/local/services/${serviceId}/endpoints`, { ownerAccountId: ALLOWED_ACCOUNT, count });
  if (response.status !== 201) throw new Error(`creating endpoints answered ${response.status}: ${JSON.stringify(response.body)}`);
  return (response.body as { vpcEndpointIds: string[] }).vpcEndpointIds;
}

/** How many of a service's connections the table records as accepted by an action, and when the last was: each of its partitions read. */
async function recordedAccepts(table: DynamoDBDocumentClient, tableName: string, serviceId: string): Promise<{ accepted: number; lastAt: number }> {
  let accepted = 0;
  let lastAt = 0;
  for (let shard = 0; shard < CONNECTION_SHARDS; shard++) {
    const items = queryAllItems(table, {
      TableName: tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ep)',
      ExpressionAttributeValues: { ':pk': keys.connectionShard(serviceId, shard).pk, ':ep': 'EP#' },
    });
    for await (const item of items) {
      const decision = item.decision as { outcome?: string; acted?: boolean; decidedAt?: string } | undefined;
      if (decision?.outcome !== 'accept' || !decision.acted) continue;
      accepted += 1;
      lastAt = Math.max(lastAt, Date.parse(decision.decidedAt ?? ''));
    }
  }
  return { accepted, lastAt };
}

type DynamodbCalls = MeterUsage & { total: number; byOperation: Record<string, number> };

async function dynamodbCalls(stack: LocalStack): Promise<DynamodbCalls> {
  const response = await stack.request('GET', '/local/dynamodb-calls');
  if (response.status !== 200) throw new Error(`GET /local/dynamodb-calls answered ${response.status}`);
  return response.body as DynamodbCalls;
}

/** GET /services, signed as a viewer: the DynamoDB requests it made, and how many of the service's connections it counted. */
async function readServices(stack: LocalStack, serviceId: string): Promise<{ dynamodbRequests: number; counted: number }> {
  const before = await quietDynamodbRequests(stack);
  const response = await signedClient(stack.baseUrl, LOCAL_VIEWER).request('GET', '/services');
  const after = await dynamodbRequests(stack);
  if (response.status !== 200) throw new Error(`GET /services answered ${response.status}`);
  const service = (response.body as { services: { serviceId: string; connections: Record<string, number> }[] }).services.find((s) => s.serviceId === serviceId);
  return { dynamodbRequests: after - before, counted: Object.values(service?.connections ?? {}).reduce((sum, n) => sum + n, 0) };
}

async function dynamodbRequests(stack: LocalStack): Promise<number> {
  return (await dynamodbCalls(stack)).total;
}

/** The DynamoDB requests so far, once none has reached the table for a second (the burst's last writes are done). */
async function quietDynamodbRequests(stack: LocalStack): Promise<number> {
  const deadline = Date.now() + 60_000;
  let last = await dynamodbRequests(stack);
  for (;;) {
    await new Promise((done) => setTimeout(done, 1000));
    const now = await dynamodbRequests(stack);
    if (now === last) return now;
    if (Date.now() > deadline) throw new Error(`the table was still busy after 60 s (${now - last} requests in the last second)`);
    last = now;
  }
}

/** What the burst cost DynamoDB: the figures' growth from `before`, and the partitions since the table was reset. */
function dynamoBurstFigures(before: DynamodbCalls, after: DynamodbCalls, partitionLimits: boolean): DynamoBurstFigures {
  const limitsAloneMs = Math.max(
    0,
    ...after.hotPartitions.map((p) => 1000 * Math.max(p.writeUnits / PARTITION_LIMITS.writeUnitsPerSecond, p.readUnits / PARTITION_LIMITS.readUnitsPerSecond)),
  );
  return {
    partitionLimits,
    readUnits: after.readUnits - before.readUnits,
    writeUnits: after.writeUnits - before.writeUnits,
    throttledRequests: after.throttledRequests - before.throttledRequests,
    unprocessedItems: after.unprocessedItems - before.unprocessedItems,
    requestsByOperation: Object.fromEntries(
      Object.entries(after.byOperation).flatMap(([operation, count]) => {
        const grown = count - (before.byOperation[operation] ?? 0);
        return grown ? [[operation, grown]] : [];
      }),
    ),
    hotPartitions: after.hotPartitions,
    limitsAloneMs,
  };
}

function totalCalls(byAction: Record<string, { received: number }>): number {
  return Object.values(byAction).reduce((sum, count) => sum + count.received, 0);
}

/**
 * Many consumers from an allowed account at once, every notification delivered
 * `duplicates` times, under EC2's default rate limits. Fails (throws) when not
 * every connection is decided within `timeoutMs` of the last Connect.
 */
export async function measureBurst(bench: BenchStack, connections: number, duplicates: number, timeoutMs = 600_000): Promise<BurstResult> {
  const { stack, table, tableName } = bench;
  await stack.reset();
  const { dynamoPartitionLimits } = await stack.faults({ duplicateDeliveries: duplicates });
  const { serviceId } = await stack.createService();
  const dynamoBefore = await dynamodbCalls(stack);
  const ownBefore = bench.ownRequests();
  const started = Date.now();
  const ids = await createEndpoints(stack, serviceId, connections);
  const lastConnect = Date.now();
  // The decisions' own times say when the last one was recorded. Reading the whole
  // service from the table takes read units from the partitions the stack is
  // using, so the table is read only once EC2 shows every connection decided, and
  // then once a second, not in a tight loop.
  await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).every((endpoint) => endpoint.state !== 'pendingAcceptance'), {
    timeoutMs,
    intervalMs: 1000,
    description: `all ${connections} connections decided in EC2`,
  });
  const { lastAt } = await stack.waitFor(
    async () => {
      const recorded = await recordedAccepts(table, tableName, serviceId);
      return recorded.accepted === connections && recorded;
    },
    { timeoutMs, intervalMs: 1000, description: `all ${connections} connections accepted and recorded` },
  );
  const decidedAfterLastConnectMs = lastAt - lastConnect;
  await stack.waitFor(() => stack.idle(), { timeoutMs: 120_000, description: 'the stack to go idle' });

  const calls = await stack.calls();
  const accepts = ids.map((id) => {
    const count = calls.byEndpoint[id]?.AcceptVpcEndpointConnections;
    return (count?.received ?? 0) - (count?.failed ?? 0);
  });
  const endpoints = await stack.listEndpoints(serviceId);
  const dynamoAfter = await dynamodbCalls(stack);
  const ownDuring = bench.ownRequests() - ownBefore;
  const servicesRead = await readServices(stack, serviceId);
  const invocations = await stack.invocations();
  const ec2Total = totalCalls(calls.byAction);
  return {
    connections,
    duplicateDeliveries: duplicates,
    connectMs: lastConnect - started,
    decidedAfterLastConnectMs,
    ec2Calls: { total: ec2Total, perConnection: ec2Total / connections, byAction: calls.byAction },
    acceptsPerConnection: { min: Math.min(...accepts), max: Math.max(...accepts) },
    undecided: endpoints.filter((e) => e.state === 'pendingAcceptance').length,
    deadLetters: (await stack.dlq()).length,
    invocations: {
      total: invocations.length,
      failed: invocations.filter((i) => !i.ok).length,
      meanBatchSize: invocations.reduce((sum, i) => sum + i.batchSize, 0) / Math.max(1, invocations.length),
      itemFailures: invocations.reduce((sum, i) => sum + i.failedItems, 0),
      longestMs: Math.max(0, ...invocations.map((i) => i.durationMs)),
    },
    // The stack's requests: the bench's own reads of the records (one Query a partition and page, each time it looks) left out.
    dynamodbRequestsPerDecided: (dynamoAfter.total - dynamoBefore.total - ownDuring) / connections,
    dynamodb: { ...dynamoBurstFigures(dynamoBefore, dynamoAfter, dynamoPartitionLimits), benchRequests: ownDuring, servicesRead },
  };
}

/** One Connect at a time on a quiet stack: how long until it is accepted and recorded. */
export async function measureQuietConnect(bench: BenchStack, samples: number): Promise<QuietConnectResult> {
  const { stack } = bench;
  await stack.reset();
  const { serviceId } = await stack.createService();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    await stack.waitFor(() => stack.idle(), { description: 'a quiet stack' });
    const started = performance.now();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED_ACCOUNT });
    await stack.waitFor(async () => (await stack.record(serviceId, vpcEndpointId))?.decision?.acted, {
      intervalMs: 10,
      timeoutMs: 60_000,
      description: 'the Connect decided',
    });
    times.push(performance.now() - started);
  }
  return { batchingWindowSeconds: bench.batchingWindowSeconds, decidedMs: summarize(times) };
}

/**
 * The notification function against the floor, both run in this process on the
 * same stack, so that each call takes the same path: the function invoked
 * directly with one Connect (a batch of one, as its event source mapping would
 * hand it), then the same AWS calls it makes, in the same order, made directly
 * with the SDK. Notifications are dropped at the topic, so that nothing else
 * runs, and EC2's rate limits are off: the handler's own cost, not EC2's limits.
 */
export async function measureOverhead(bench: BenchStack, notifications: number): Promise<OverheadResult> {
  const { stack, table, tableName } = bench;
  await stack.reset();
  await stack.faults({ dropNotifications: 1, ec2RateLimits: false });
  const { serviceId } = await stack.createService();
  const handler = await notificationFunctionHere(await stack.health());
  const ec2Before = totalCalls((await stack.calls()).byAction);
  const dynamoBefore = await dynamodbRequests(stack);
  const handlerMs: number[] = [];
  for (let i = 0; i < notifications; i++) {
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED_ACCOUNT });
    const connect = (await stack.notifications()).find((n) => {
      const notification = JSON.parse(n.message) as { eventType?: string; vpcEndpointId?: string };
      return notification.eventType === 'Connect' && notification.vpcEndpointId === vpcEndpointId;
    });
    if (!connect) throw new Error(`no Connect notification for ${vpcEndpointId}`);
    const started = performance.now();
    const response = (await handler(oneMessageBatch(connect.message), lambdaContext('bench-on-connection-notification', randomUUID()))) as { batchItemFailures?: unknown[] };
    handlerMs.push(performance.now() - started);
    if (response?.batchItemFailures?.length) throw new Error(`the handler failed the Connect of ${vpcEndpointId}`);
  }
  const calls = await stack.calls();
  const dynamoAfter = await dynamodbRequests(stack);
  const snsPublished = (await stack.outbox()).length;

  const floorMs = await measureFloor(stack, tableName, serviceId, table, notifications);
  await stack.faults({});
  const handlerSummary = summarize(handlerMs);
  const floor = summarize(floorMs);
  return {
    notifications,
    handlerMs: handlerSummary,
    floorMs: floor,
    p99Ratio: handlerSummary.p99 / floor.p99,
    medianRatio: handlerSummary.median / floor.median,
    callsPerNotification: {
      ec2: (totalCalls(calls.byAction) - ec2Before) / notifications,
      dynamodb: (dynamoAfter - dynamoBefore) / notifications,
      sns: snsPublished / notifications,
    },
  };
}

/**
 * Points this process at the stack as the stack points its functions: the
 * standard AWS variables and the functions' configuration. Set in full before
 * any of lib/ is loaded here, since its configuration is read once, when first
 * asked for.
 */
export function runHereAsTheFunctions(health: Health): void {
  const baseUrl = new URL(health.ec2Endpoint).origin;
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_EC2: health.ec2Endpoint,
    AWS_ENDPOINT_URL_SNS: health.snsEndpoint,
    AWS_ENDPOINT_URL_DYNAMODB: health.dynamodbEndpoint,
    AWS_ENDPOINT_URL_SQS: health.sqsEndpoint,
    AWS_ENDPOINT_URL_ORGANIZATIONS: `${baseUrl}${ORGANIZATIONS_PATH}`,
    AWS_ENDPOINT_URL_STS: `${baseUrl}${STS_PATH}`,
    TABLE_NAME: health.tableName,
    OUTBOUND_TOPIC_ARN: health.outboundTopicArn,
    MANAGED_SERVICE_IDS: '',
    POWERTOOLS_LOG_LEVEL: 'WARN',
    POWERTOOLS_METRICS_NAMESPACE: 'vpce-gatekeeper-bench',
  });
}

/**
 * The notification function's handler, imported into this process. Its logs
 * and metrics are written as in Lambda, to stdout, which is swallowed while it
 * runs.
 */
async function notificationFunctionHere(health: Health): Promise<SqsLambdaHandler> {
  runHereAsTheFunctions(health);
  const { handler } = await import('../handlers/on-connection-notification');
  return async (event, context) => {
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      return await handler(event, context);
    } finally {
      process.stdout.write = write;
    }
  };
}

const NOTIFICATION_QUEUE_ARN = 'arn:aws:sqs:us-east-1:000000000000:vpce-gatekeeper-local-notifications';

/** One queue message carrying a notification, as the event source mapping hands it over. */
function oneMessageBatch(body: string): SQSEvent {
  const now = String(Date.now());
  const attributes = { ApproximateReceiveCount: '1', SentTimestamp: now, SenderId: 'AIDAIT2UOQQY3AUEKVGXU', ApproximateFirstReceiveTimestamp: now };
  return { Records: [sqsRecord({ messageId: randomUUID(), receiptHandle: randomUUID(), body, md5OfBody: md5(body), attributes }, NOTIFICATION_QUEUE_ARN)] };
}

/**
 * What deciding one Connect costs in AWS calls alone: read the record, describe,
 * read the policy (own, then default), claim (and count it), accept, publish,
 * record (and count the change of state). Made on
 * endpoints whose notifications are dropped, so that nothing else runs. The
 * per-notification call counts the benchmark prints show what the handler makes.
 */
async function measureFloor(stack: LocalStack, tableName: string, serviceId: string, table: DynamoDBDocumentClient, count: number): Promise<number[]> {
  const health = await stack.health();
  const ec2 = new EC2Client({ endpoint: health.ec2Endpoint, region: 'us-east-1', credentials: CREDENTIALS });
  const sns = new SNSClient({ endpoint: health.snsEndpoint, region: 'us-east-1', credentials: CREDENTIALS });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED_ACCOUNT })).vpcEndpointId);

  // Each change of a record's state is counted (lib/aws/connection-counts.ts).
  const countChange = (deltas: Record<string, number>) =>
    table.send(
      new UpdateCommand({
        TableName: tableName,
        Key: keys.counts(serviceId, 0),
        UpdateExpression: `SET serviceId = :service ADD ${Object.keys(deltas).map((_, i) => `#s${i} :d${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(Object.keys(deltas).map((state, i) => [`#s${i}`, state])),
        ExpressionAttributeValues: { ':service': serviceId, ...Object.fromEntries(Object.values(deltas).map((delta, i) => [`:d${i}`, delta])) },
      }),
    );
  const times: number[] = [];
  for (const endpointId of ids) {
    const key = keys.connection(serviceId, endpointId);
    const started = performance.now();
    await table.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: [key], ConsistentRead: true } } }));
    await ec2.send(new DescribeVpcEndpointConnectionsCommand({ Filters: [{ Name: 'service-id', Values: [serviceId] }, { Name: 'vpc-endpoint-id', Values: [endpointId] }], MaxResults: 1000 }));
    for (const policyId of [serviceId, 'default']) {
      await table.send(new QueryCommand({ TableName: tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': keys.policyVersions(policyId).pk }, ScanIndexForward: false, Limit: 1, ConsistentRead: true }));
    }
    const item = { ...key, serviceId, endpointId, state: 'pendingAcceptance', version: 1, history: [] as unknown[] };
    await table.send(new PutCommand({ TableName: tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
    await countChange({ pendingAcceptance: 1 });
    await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [endpointId] }));
    await sns.send(
      new PublishBatchCommand({ TopicArn: health.outboundTopicArn, PublishBatchRequestEntries: [{ Id: randomUUID(), Message: JSON.stringify({ eventType: 'accepted', endpointId }) }] }),
    );
    await table.send(new PutCommand({ TableName: tableName, Item: { ...item, state: 'pending', version: 2 }, ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': 1 } }));
    await countChange({ pendingAcceptance: -1, pending: 1 });
    times.push(performance.now() - started);
  }
  ec2.destroy();
  sns.destroy();
  return times;
}
