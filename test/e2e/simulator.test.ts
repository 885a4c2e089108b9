// The local stack's own contract: the PrivateLink simulator spoken to through the
// real EC2Client, the simulated SNS through the real SNSClient, and the control
// routes. Nothing here depends on what the handler decides; it checks EC2's view.
import {
  AcceptVpcEndpointConnectionsCommand,
  DescribeVpcEndpointConnectionsCommand,
  DescribeVpcEndpointServiceConfigurationsCommand,
  type EC2Client,
  type Filter,
  paginateDescribeVpcEndpointConnections,
  RejectVpcEndpointConnectionsCommand,
} from '@aws-sdk/client-ec2';
import { NotFoundException, PublishBatchCommand, PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { DescribeTableCommand, DynamoDBClient, ProvisionedThroughputExceededException, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalStack, OUTBOUND_TOPIC_ARN, startLocalStack } from './local-stack';

const CONSUMER_A = '111122223333';
const CONSUMER_B = '444455556666';
const UNKNOWN_ENDPOINT = 'vpce-0123456789abcdef0';
const DEFAULT_RATE_LIMITS = { mutating: { capacity: 50, refillPerSecond: 5 }, nonMutating: { capacity: 100, refillPerSecond: 20 } };
/** GET /local/faults with nothing injected: EC2's rate limits and DynamoDB's partition limits are still in force. */
const NO_FAULTS = {
  ec2ThrottleRate: 0,
  duplicateDeliveries: 1,
  shuffleDeliveries: false,
  ec2ErrorRate: 0,
  dropNotifications: 0,
  crashAfterEc2Call: 0,
  dynamoUnavailable: false,
  ec2UnavailableFor: [],
  ec2RateLimits: DEFAULT_RATE_LIMITS,
  organizationsUnavailable: false,
  spokeUnavailable: [],
  dynamoPartitionLimits: true,
};

let stack: LocalStack;
let ec2: EC2Client;
let sns: SNSClient;

beforeAll(async () => {
  stack = await startLocalStack({ acceptDelayMs: 200 });
  ec2 = stack.ec2Client();
  sns = stack.snsClient();
});

afterAll(async () => {
  ec2?.destroy();
  sns?.destroy();
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function describeConnections(filters: Filter[]) {
  const output = await ec2.send(new DescribeVpcEndpointConnectionsCommand({ Filters: filters }));
  return output.VpcEndpointConnections ?? [];
}

async function endpointIds(filters: Filter[]): Promise<string[]> {
  return (await describeConnections(filters)).map((connection) => connection.VpcEndpointId ?? '').sort();
}

async function stateOf(serviceId: string, vpcEndpointId: string): Promise<string | undefined> {
  const [connection] = await describeConnections([
    { Name: 'service-id', Values: [serviceId] },
    { Name: 'vpc-endpoint-id', Values: [vpcEndpointId] },
  ]);
  return connection?.VpcEndpointState;
}

/** The error the SDK throws, for asserting its name, message and status. */
async function sdkError(promise: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await promise;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return { name: (error as Error).name, message: (error as Error).message, status };
  }
  throw new Error('expected the call to fail');
}

describe('DescribeVpcEndpointConnections', () => {
  it('describes a connection with every field the SDK models', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A, region: 'eu-west-1' });

    const [connection] = await describeConnections([{ Name: 'vpc-endpoint-id', Values: [vpcEndpointId] }]);

    expect(connection).toMatchObject({
      ServiceId: serviceId,
      VpcEndpointId: vpcEndpointId,
      VpcEndpointOwner: CONSUMER_A,
      VpcEndpointState: 'pendingAcceptance',
      VpcEndpointRegion: 'eu-west-1',
      IpAddressType: 'ipv4',
    });
    expect(serviceId).toMatch(/^vpce-svc-[0-9a-f]{17}$/);
    expect(vpcEndpointId).toMatch(/^vpce-[0-9a-f]{17}$/);
    expect(connection?.VpcEndpointConnectionId).toMatch(/^vpce-con-[0-9a-f]{17}$/);
    expect(connection?.CreationTimestamp).toBeInstanceOf(Date);
    expect(connection?.NetworkLoadBalancerArns?.[0]).toMatch(/^arn:aws:elasticloadbalancing:us-east-1:000000000000:/);
  });

  it('filters by service id, endpoint id, owner and state, ANDing filters and ORing values', async () => {
    const gated = (await stack.createService({ acceptanceRequired: true })).serviceId;
    const open = (await stack.createService({ acceptanceRequired: false })).serviceId;
    const a1 = (await stack.createEndpoint(gated, { ownerAccountId: CONSUMER_A })).vpcEndpointId;
    const b1 = (await stack.createEndpoint(gated, { ownerAccountId: CONSUMER_B })).vpcEndpointId;
    const a2 = (await stack.createEndpoint(open, { ownerAccountId: CONSUMER_A })).vpcEndpointId;

    expect(await endpointIds([])).toEqual([a1, b1, a2].sort());
    expect(await endpointIds([{ Name: 'service-id', Values: [gated] }])).toEqual([a1, b1].sort());
    expect(await endpointIds([{ Name: 'vpc-endpoint-id', Values: [a1, a2] }])).toEqual([a1, a2].sort());
    expect(await endpointIds([{ Name: 'vpc-endpoint-owner', Values: [CONSUMER_A] }])).toEqual([a1, a2].sort());
    expect(await endpointIds([{ Name: 'vpc-endpoint-state', Values: ['PENDINGACCEPTANCE'] }])).toEqual([a1, b1].sort());
    expect(
      await endpointIds([
        { Name: 'service-id', Values: [gated] },
        { Name: 'vpc-endpoint-owner', Values: [CONSUMER_B] },
      ]),
    ).toEqual([b1]);
    expect(await endpointIds([{ Name: 'vpc-endpoint-id', Values: [UNKNOWN_ENDPOINT] }])).toEqual([]);
  });

  it('refuses a filter it does not know', async () => {
    const error = await sdkError(describeConnections([{ Name: 'tag:Name', Values: ['x'] }]));

    expect(error).toMatchObject({ name: 'InvalidParameterValue', status: 400 });
  });

  it('pages with MaxResults and an opaque NextToken that the SDK paginator follows', async () => {
    const { serviceId } = await stack.createService();
    const created: string[] = [];
    for (let i = 0; i < 12; i += 1) created.push((await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A })).vpcEndpointId);

    const first = await ec2.send(new DescribeVpcEndpointConnectionsCommand({ MaxResults: 5 }));
    const pageSizes: number[] = [];
    const seen: string[] = [];
    for await (const page of paginateDescribeVpcEndpointConnections({ client: ec2, pageSize: 5 }, {})) {
      pageSizes.push(page.VpcEndpointConnections?.length ?? 0);
      seen.push(...(page.VpcEndpointConnections ?? []).map((connection) => connection.VpcEndpointId ?? ''));
    }

    expect(first.VpcEndpointConnections).toHaveLength(5);
    expect(first.NextToken).toEqual(expect.any(String));
    expect(pageSizes).toEqual([5, 5, 2]);
    expect(seen).toEqual(created);
  });

  it('refuses MaxResults below 5 and a NextToken it did not issue', async () => {
    const tooSmall = await sdkError(ec2.send(new DescribeVpcEndpointConnectionsCommand({ MaxResults: 4 })));
    const forged = await sdkError(ec2.send(new DescribeVpcEndpointConnectionsCommand({ NextToken: 'not-a-token' })));

    expect(tooSmall).toMatchObject({ name: 'InvalidParameterValue', status: 400 });
    expect(forged).toMatchObject({ name: 'InvalidPaginationToken', status: 400 });
  });
});

describe('AcceptVpcEndpointConnections and RejectVpcEndpointConnections', () => {
  it('acts on the endpoints it can and lists the others as unsuccessful, with a reason', async () => {
    const { serviceId } = await stack.createService();
    const first = (await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A })).vpcEndpointId;
    const second = (await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_B })).vpcEndpointId;

    const accepted = await ec2.send(
      new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [first, UNKNOWN_ENDPOINT] }),
    );
    const rejected = await ec2.send(new RejectVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [second] }));
    const acceptAgain = await ec2.send(
      new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [first, second] }),
    );

    expect(accepted.Unsuccessful).toEqual([
      {
        ResourceId: UNKNOWN_ENDPOINT,
        Error: { Code: 'InvalidVpcEndpointId.NotFound', Message: expect.stringContaining(UNKNOWN_ENDPOINT) },
      },
    ]);
    expect(rejected.Unsuccessful).toEqual([]);
    expect(acceptAgain.Unsuccessful).toEqual([
      { ResourceId: first, Error: { Code: 'InvalidState', Message: expect.stringMatching(/state (pending|available)$/) } },
      { ResourceId: second, Error: { Code: 'InvalidState', Message: expect.stringContaining('state rejected') } },
    ]);
  });

  it('does not act on an endpoint through another service', async () => {
    const mine = (await stack.createService()).serviceId;
    const theirs = (await stack.createService()).serviceId;
    const { vpcEndpointId } = await stack.createEndpoint(theirs, { ownerAccountId: CONSUMER_A });

    const output = await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: mine, VpcEndpointIds: [vpcEndpointId] }));

    expect(output.Unsuccessful?.[0]?.Error?.Code).toBe('InvalidVpcEndpointId.NotFound');
    expect(await stateOf(theirs, vpcEndpointId)).toBe('pendingAcceptance');
  });

  it('answers an unknown service with a whole-request error', async () => {
    const error = await sdkError(
      ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: 'vpce-svc-00000000000000000', VpcEndpointIds: [UNKNOWN_ENDPOINT] })),
    );

    expect(error).toMatchObject({ name: 'InvalidVpcEndpointServiceId.NotFound', status: 400 });
  });
});

describe('the connection state machine', () => {
  it('takes an accepted connection through pending to available, and can still reject it', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId, state } = await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A });

    await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [vpcEndpointId] }));
    await stack.waitFor(async () => (await stateOf(serviceId, vpcEndpointId)) === 'available', { description: 'available' });
    await ec2.send(new RejectVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [vpcEndpointId] }));

    expect(state).toBe('pendingAcceptance');
    expect(await stateOf(serviceId, vpcEndpointId)).toBe('rejected');
    expect(await stack.listEndpoints(serviceId)).toEqual([
      { vpcEndpointId, ownerAccountId: CONSUMER_A, region: 'us-east-1', state: 'rejected' },
    ]);
  });

  it('lets the endpoints of a service without acceptance through on their own', async () => {
    const { serviceId } = await stack.createService({ acceptanceRequired: false });
    const { vpcEndpointId, state } = await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A });

    await stack.waitFor(async () => (await stateOf(serviceId, vpcEndpointId)) === 'available', { description: 'available' });

    expect(state).toBe('pending');
  });

  it('keeps describing a deleted endpoint as deleted, and accepts it no more', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A });

    const deleted = await stack.deleteEndpoint(serviceId, vpcEndpointId);
    const output = await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [vpcEndpointId] }));

    expect(deleted.state).toBe('deleted');
    expect(await stateOf(serviceId, vpcEndpointId)).toBe('deleted');
    expect(output.Unsuccessful?.[0]?.Error).toEqual({ Code: 'InvalidState', Message: expect.stringContaining('state deleted') });
  });

  it('publishes Connect, Accept, Reject and Delete notifications shaped as AWS publishes them', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A });

    await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [vpcEndpointId] }));
    await ec2.send(new RejectVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [vpcEndpointId] }));
    await stack.deleteEndpoint(serviceId, vpcEndpointId);

    const messages = (await stack.notifications()).map((published) => published.message);
    expect(messages.map((message) => JSON.parse(message))).toEqual(
      (['Connect', 'Accept', 'Reject', 'Delete'] as const).map((eventType, i) => ({
        eventType,
        serviceId,
        vpcEndpointId,
        vpcEndpointOwner: CONSUMER_A,
        vpcEndpointState: ['pendingAcceptance', 'pending', 'rejected', 'deleted'][i],
        eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      })),
    );
    expect(Object.keys(JSON.parse(messages[0] ?? '{}'))).toEqual([
      'eventType',
      'serviceId',
      'vpcEndpointId',
      'vpcEndpointOwner',
      'vpcEndpointState',
      'eventTime',
    ]);
  });
});

describe('DescribeVpcEndpointServiceConfigurations', () => {
  it('describes the services, by id, by filter and page by page', async () => {
    const gated = await stack.createService({ serviceId: 'vpce-svc-0000000000000000a', acceptanceRequired: true });
    const open = await stack.createService({ acceptanceRequired: false });
    for (let i = 0; i < 4; i += 1) await stack.createService();

    const byId = await ec2.send(new DescribeVpcEndpointServiceConfigurationsCommand({ ServiceIds: [gated.serviceId] }));
    const byFilter = await ec2.send(
      new DescribeVpcEndpointServiceConfigurationsCommand({ Filters: [{ Name: 'service-id', Values: [open.serviceId] }] }),
    );
    const firstPage = await ec2.send(new DescribeVpcEndpointServiceConfigurationsCommand({ MaxResults: 5 }));
    const secondPage = await ec2.send(
      new DescribeVpcEndpointServiceConfigurationsCommand({ MaxResults: 5, NextToken: firstPage.NextToken }),
    );

    expect(byId.ServiceConfigurations).toEqual([
      expect.objectContaining({
        ServiceId: gated.serviceId,
        ServiceName: `com.amazonaws.vpce.us-east-1.${gated.serviceId}`,
        ServiceState: 'Available',
        AcceptanceRequired: true,
        ServiceType: [{ ServiceType: 'Interface' }],
      }),
    ]);
    expect(byFilter.ServiceConfigurations?.map((service) => [service.ServiceId, service.AcceptanceRequired])).toEqual([
      [open.serviceId, false],
    ]);
    expect(firstPage.ServiceConfigurations).toHaveLength(5);
    expect(secondPage.ServiceConfigurations).toHaveLength(1);
    expect(secondPage.NextToken).toBeUndefined();
  });

  it('answers an unknown service id with InvalidVpcEndpointServiceId.NotFound', async () => {
    const error = await sdkError(
      ec2.send(new DescribeVpcEndpointServiceConfigurationsCommand({ ServiceIds: ['vpce-svc-00000000000000000'] })),
    );

    expect(error).toMatchObject({ name: 'InvalidVpcEndpointServiceId.NotFound', status: 400 });
  });
});

describe('EC2 fault injection and call accounting', () => {
  it('answers throttled calls with RequestLimitExceeded without acting, and counts them as failed', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A });
    const oneShot = stack.ec2Client({ maxAttempts: 1 });

    const inForce = await stack.faults({ ec2ThrottleRate: 1 });
    const error = await sdkError(
      oneShot.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [UNKNOWN_ENDPOINT] })),
    );
    const throttledAccept = await sdkError(
      oneShot.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [vpcEndpointId] })),
    );
    await stack.faults({});
    const calls = await stack.calls();
    oneShot.destroy();

    expect(inForce).toEqual({ ...NO_FAULTS, ec2ThrottleRate: 1 });
    expect(error).toMatchObject({ name: 'RequestLimitExceeded', status: 503 });
    expect(throttledAccept.name).toBe('RequestLimitExceeded');
    expect(await stateOf(serviceId, vpcEndpointId)).toBe('pendingAcceptance');
    expect(calls.byEndpoint[UNKNOWN_ENDPOINT]).toEqual({ AcceptVpcEndpointConnections: { received: 1, failed: 1 } });
    expect(calls.byAction.AcceptVpcEndpointConnections?.failed).toBeGreaterThanOrEqual(2);
  });

  it('is recognised by the SDK as throttling, which it retries', async () => {
    const { serviceId } = await stack.createService();
    const twoAttempts = stack.ec2Client({ maxAttempts: 2 });

    await stack.faults({ ec2ThrottleRate: 1 });
    const error = await sdkError(
      twoAttempts.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [UNKNOWN_ENDPOINT] })),
    );
    await stack.faults({});
    twoAttempts.destroy();

    expect(error.name).toBe('RequestLimitExceeded');
    expect((await stack.calls()).byEndpoint[UNKNOWN_ENDPOINT]).toEqual({ AcceptVpcEndpointConnections: { received: 2, failed: 2 } });
  });

  it("refuses calls beyond EC2's default rate limits with RequestLimitExceeded, each API on its own, and counts them failed", async () => {
    const { serviceId } = await stack.createService();
    const oneShot = stack.ec2Client({ maxAttempts: 1 });
    const accept = () => oneShot.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [UNKNOWN_ENDPOINT] }));

    const started = performance.now();
    const accepts = await Promise.allSettled(Array.from({ length: 100 }, accept));
    const elapsedSeconds = (performance.now() - started) / 1000;
    const reject = await oneShot.send(new RejectVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [UNKNOWN_ENDPOINT] }));
    const calls = await stack.calls();
    oneShot.destroy();

    const refused = accepts.filter((a) => a.status === 'rejected').map((a) => (a.reason as Error).name);
    // 50 tokens, and 5 a second refilled while the calls were made
    expect(100 - refused.length).toBeLessThanOrEqual(50 + Math.ceil(5 * elapsedSeconds));
    expect(new Set(refused)).toEqual(new Set(['RequestLimitExceeded']));
    expect(reject.Unsuccessful).toHaveLength(1); // its own bucket, still full
    expect(calls.byAction.AcceptVpcEndpointConnections).toEqual({ received: 100, failed: refused.length });
  });

  it('takes rate limits of its own, turns them off with false, and restores the defaults with {}', async () => {
    const { serviceId } = await stack.createService();
    const oneShot = stack.ec2Client({ maxAttempts: 1 });
    let elapsedSeconds = 0;
    const describeAll = async (n: number) => {
      const started = performance.now();
      const results = await Promise.allSettled(Array.from({ length: n }, () => oneShot.send(new DescribeVpcEndpointConnectionsCommand({ Filters: [{ Name: 'service-id', Values: [serviceId] }] }))));
      elapsedSeconds = (performance.now() - started) / 1000;
      return results;
    };
    const refusedOf = (results: PromiseSettledResult<unknown>[]) => results.filter((r) => r.status === 'rejected').length;

    const tight = await stack.faults({ ec2RateLimits: { nonMutating: { capacity: 5, refillPerSecond: 0.01 } } });
    const underTight = refusedOf(await describeAll(8));
    const off = await stack.faults({ ec2RateLimits: false });
    const underNone = refusedOf(await describeAll(150));
    const restored = await stack.faults({});
    const underDefaults = refusedOf(await describeAll(200));
    const defaultsElapsed = elapsedSeconds;
    oneShot.destroy();

    expect(tight.ec2RateLimits).toEqual({ ...DEFAULT_RATE_LIMITS, nonMutating: { capacity: 5, refillPerSecond: 0.01 } });
    expect(underTight).toBe(3);
    expect(off.ec2RateLimits).toBe(false);
    expect(underNone).toBe(0);
    expect(restored.ec2RateLimits).toEqual(DEFAULT_RATE_LIMITS);
    expect(200 - underDefaults).toBeLessThanOrEqual(100 + Math.ceil(20 * defaultsElapsed)); // 100 tokens, 20 a second after
  });

  it('answers calls naming a service set unavailable with 503 Unavailable, and no others', async () => {
    const { serviceId: broken } = await stack.createService();
    const { serviceId: fine } = await stack.createService();
    const oneShot = stack.ec2Client({ maxAttempts: 1 });

    await stack.faults({ ec2UnavailableFor: [broken] });
    const error = await sdkError(oneShot.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: broken, VpcEndpointIds: [UNKNOWN_ENDPOINT] })));
    const answered = await oneShot.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: fine, VpcEndpointIds: [UNKNOWN_ENDPOINT] }));
    oneShot.destroy();

    expect(error).toMatchObject({ name: 'Unavailable', status: 503 });
    expect(answered.Unsuccessful).toHaveLength(1);
  });

  it('counts every call by action and by each endpoint it names, in ids and in filters', async () => {
    const { serviceId } = await stack.createService();
    const first = 'vpce-0000000000000000a';
    const second = 'vpce-0000000000000000b';

    await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [first, second] }));
    await ec2.send(new RejectVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [first] }));
    await describeConnections([{ Name: 'vpc-endpoint-id', Values: [second] }]);
    const calls = await stack.calls();

    expect(calls.byEndpoint[first]).toEqual({
      AcceptVpcEndpointConnections: { received: 1, failed: 0 },
      RejectVpcEndpointConnections: { received: 1, failed: 0 },
    });
    expect(calls.byEndpoint[second]).toEqual({
      AcceptVpcEndpointConnections: { received: 1, failed: 0 },
      DescribeVpcEndpointConnections: { received: 1, failed: 0 },
    });
    expect(calls.byAction.AcceptVpcEndpointConnections).toEqual({ received: 1, failed: 0 });
  });
});

describe('the outbound SNS topic', () => {
  it('keeps what is published, in order, with its message attributes', async () => {
    const marker = `test-${Date.now()}`;

    await sns.send(
      new PublishCommand({
        TopicArn: OUTBOUND_TOPIC_ARN,
        Message: JSON.stringify({ marker, n: 1 }),
        MessageAttributes: { eventType: { DataType: 'String', StringValue: 'accepted' } },
      }),
    );
    await sns.send(new PublishCommand({ TopicArn: OUTBOUND_TOPIC_ARN, Message: `${marker} <plain & text>` }));
    const batch = await sns.send(
      new PublishBatchCommand({
        TopicArn: OUTBOUND_TOPIC_ARN,
        PublishBatchRequestEntries: [
          { Id: 'a', Message: JSON.stringify({ marker, n: 3 }) },
          { Id: 'b', Message: JSON.stringify({ marker, n: 4 }) },
        ],
      }),
    );
    const mine = (await stack.outbox()).filter((published) => JSON.stringify(published.message).includes(marker));

    expect(batch.Successful?.map((entry) => entry.Id)).toEqual(['a', 'b']);
    expect(batch.Failed).toEqual([]);
    expect(mine.map((published) => published.message)).toEqual([
      { marker, n: 1 },
      `${marker} <plain & text>`,
      { marker, n: 3 },
      { marker, n: 4 },
    ]);
    expect(mine[0]).toMatchObject({
      topicArn: OUTBOUND_TOPIC_ARN,
      messageAttributes: { eventType: { DataType: 'String', StringValue: 'accepted' } },
      publishedAt: expect.any(String),
    });
  });

  it('refuses a whole PublishBatch, as SNS does, whose ids repeat or are malformed, or whose messages pass 256 KiB together', async () => {
    const publishBatch = (entries: { Id: string; Message: string }[]) =>
      sdkError(sns.send(new PublishBatchCommand({ TopicArn: OUTBOUND_TOPIC_ARN, PublishBatchRequestEntries: entries })));
    const before = (await stack.outbox()).length;
    const big = 'x'.repeat(100_000);

    expect(await publishBatch([{ Id: 'a', Message: 'one' }, { Id: 'a', Message: 'two' }])).toMatchObject({ name: 'BatchEntryIdsNotDistinctException', status: 400 });
    expect(await publishBatch([{ Id: 'not ok', Message: 'one' }])).toMatchObject({ name: 'InvalidBatchEntryIdException', status: 400 });
    expect(await publishBatch(['a', 'b', 'c'].map((Id) => ({ Id, Message: big })))).toMatchObject({ name: 'BatchRequestTooLongException', status: 400 });
    expect((await stack.outbox()).length).toBe(before);
  });

  it('refuses a message over 256 KiB, attributes counted, with InvalidParameter as SNS does, and publishes nothing', async () => {
    const before = (await stack.outbox()).length;
    const attribute = { eventType: { DataType: 'String', StringValue: 'accepted' } };
    const attributeBytes = 'eventType'.length + 'String'.length + 'accepted'.length;

    const tooLong = await sdkError(sns.send(new PublishCommand({ TopicArn: OUTBOUND_TOPIC_ARN, Message: 'x'.repeat(262_145) })));
    const tooLongWithAttributes = await sdkError(
      sns.send(new PublishCommand({ TopicArn: OUTBOUND_TOPIC_ARN, Message: 'x'.repeat(262_144 - attributeBytes + 1), MessageAttributes: attribute })),
    );
    const inBatch = await sns.send(
      new PublishBatchCommand({ TopicArn: OUTBOUND_TOPIC_ARN, PublishBatchRequestEntries: [{ Id: 'a', Message: 'x'.repeat(262_145) }] }),
    ).catch((error: unknown) => error);
    expect((await stack.outbox()).length).toBe(before);
    const atTheLimit = await sns.send(
      new PublishCommand({ TopicArn: OUTBOUND_TOPIC_ARN, Message: 'x'.repeat(262_144 - attributeBytes), MessageAttributes: attribute }),
    );

    for (const error of [tooLong, tooLongWithAttributes]) {
      expect(error).toMatchObject({ name: 'InvalidParameterException', message: 'Invalid parameter: Message too long', status: 400 });
    }
    expect(inBatch).toMatchObject({ name: 'BatchRequestTooLongException' });
    expect(atTheLimit.MessageId).toEqual(expect.any(String));
    expect((await stack.outbox()).length).toBe(before + 1);
  });

  it('returns the MessageId of a publish', async () => {
    const output = await sns.send(new PublishCommand({ TopicArn: OUTBOUND_TOPIC_ARN, Message: 'hello' }));

    expect(output.MessageId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers a topic that does not exist with NotFound', async () => {
    const publish = sns.send(new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:000000000000:nope', Message: 'x' }));

    await expect(publish).rejects.toBeInstanceOf(NotFoundException);
    expect(await sdkError(publish)).toMatchObject({ status: 404 });
  });
});

describe('the control routes', () => {
  it.each([
    ['POST', '/local/services', 'not json', 'InvalidJson'],
    ['POST', '/local/services', { acceptanceRequired: 'yes' }, 'InvalidRequest'],
    ['POST', '/local/services', { acceptanceRequired: true, colour: 'blue' }, 'InvalidRequest'],
    ['POST', '/local/services', { serviceId: 'vpce-svc-XYZ' }, 'InvalidRequest'],
    ['POST', '/local/notifications', { message: 42 }, 'InvalidRequest'],
    ['POST', '/local/faults', { ec2ThrottleRate: 1.5 }, 'InvalidRequest'],
    ['POST', '/local/faults', { duplicateDeliveries: 0 }, 'InvalidRequest'],
    ['POST', '/local/faults', { duplicateDeliveries: 2.5 }, 'InvalidRequest'],
    ['POST', '/local/faults', { dropEverything: true }, 'InvalidRequest'],
    ['POST', '/local/reset', [], 'InvalidRequest'],
  ])('answers %s %s with body %j by 400 %s', async (method, path, body, code) => {
    const response = await stack.request(method, path, body);

    expect(response).toEqual({ status: 400, body: { error: { code, message: expect.any(String) } } });
  });

  it('refuses an endpoint whose owner is not a 12-digit account id', async () => {
    const { serviceId } = await stack.createService();

    const response = await stack.request('POST', `/local/services/${serviceId}/endpoints`, { ownerAccountId: '1234' });

    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toContain('ownerAccountId');
  });

  it('answers unknown routes, services and endpoints with 404 and a duplicate service id with 409', async () => {
    const { serviceId } = await stack.createService({ serviceId: 'vpce-svc-0123456789abcdef0' });

    const unknownRoute = await stack.request('GET', '/local/nothing-here');
    const unknownService = await stack.request('GET', '/local/services/vpce-svc-00000000000000000/endpoints');
    const unknownEndpoint = await stack.request('DELETE', `/local/services/${serviceId}/endpoints/${UNKNOWN_ENDPOINT}`);
    const duplicate = await stack.request('POST', '/local/services', { serviceId });

    expect(unknownRoute).toEqual({ status: 404, body: { error: { code: 'NotFound', message: expect.any(String) } } });
    expect(unknownService.status).toBe(404);
    expect(unknownEndpoint.status).toBe(404);
    expect(duplicate).toEqual({ status: 409, body: { error: { code: 'Conflict', message: expect.any(String) } } });
  });

  it('refuses a notification over 256 KiB for the inbound topic, as SNS would, and delivers nothing', async () => {
    const response = await stack.request('POST', '/local/notifications', { message: 'x'.repeat(262_145) });

    expect(response).toEqual({ status: 400, body: { error: { code: 'InvalidParameter', message: 'Invalid parameter: Message too long' } } });
    expect(await stack.notifications()).toEqual([]);
  });

  it('publishes a raw notification to the inbound topic as given', async () => {
    const raw = 'not even JSON {';

    const response = await stack.request('POST', '/local/notifications', { message: raw });

    expect(response).toEqual({ status: 202, body: { messageId: expect.any(String) } });
    expect((await stack.notifications()).map((published) => published.message)).toEqual([raw]);
  });

  it('applies faults as a whole: {} clears them', async () => {
    const set = await stack.faults({ duplicateDeliveries: 3, shuffleDeliveries: true });
    const cleared = await stack.faults({});

    expect(set).toEqual({ ...NO_FAULTS, duplicateDeliveries: 3, shuffleDeliveries: true });
    expect(cleared).toEqual(NO_FAULTS);
  });
});

describe("the local DynamoDB's partition limits", () => {
  /** Puts 390 KB items (381 write units each) on one partition key, without retries, until one is refused. */
  async function writeUntilRefused(pk: string): Promise<ProvisionedThroughputExceededException | undefined> {
    const { dynamodbEndpoint, tableName } = await stack.health();
    const dynamo = new DynamoDBClient({ endpoint: dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });
    try {
      for (let i = 0; i < 12; i++) {
        const refused = await dynamo
          .send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: pk }, sk: { S: `EP#${i}` }, padding: { S: 'x'.repeat(390_000) } } }))
          .then(() => undefined, (error: unknown) => error);
        if (refused instanceof ProvisionedThroughputExceededException) return refused;
        if (refused) throw refused;
      }
      return undefined;
    } finally {
      dynamo.destroy();
    }
  }

  it('throttles a hot partition key under dynamoPartitionLimits (on by default), not once it is off, and reports it by table and index', async () => {
    const off = await stack.faults({ dynamoPartitionLimits: false });
    const whileOff = await writeUntilRefused('CONN#off');
    const inForce = await stack.faults({});
    const whileOn = await writeUntilRefused('CONN#on');

    const { tableName } = await stack.health();
    const calls = (await stack.request('GET', '/local/dynamodb-calls')).body as {
      throttledRequests: number;
      writeUnits: number;
      byTable: Record<string, { writeUnits: number; throttled: number }>;
      hotPartitions: { partitionKey: string; throttled: number }[];
    };
    expect(off.dynamoPartitionLimits).toBe(false);
    expect(inForce.dynamoPartitionLimits).toBe(true);
    expect(whileOff).toBeUndefined();
    expect(whileOn?.ThrottlingReasons?.[0]?.reason).toBe('TableWriteKeyRangeThroughputExceeded');
    expect(calls.throttledRequests).toBeGreaterThanOrEqual(1);
    expect(calls.byTable[tableName]?.writeUnits).toBeGreaterThanOrEqual(12 * 381 + 2 * 381);
    expect(calls.hotPartitions.find((partition) => partition.partitionKey === 'CONN#on')?.throttled).toBe(1);
  });
});

describe('reset', () => {
  it('empties the simulator, table, outbox, calls, notifications, DLQ and faults', async () => {
    const { serviceId } = await stack.createService();
    await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A });
    await sns.send(new PublishCommand({ TopicArn: OUTBOUND_TOPIC_ARN, Message: 'before reset' }));
    await stack.faults({ ec2ThrottleRate: 0.5 });
    const { dynamodbEndpoint, tableName } = await stack.health();
    const dynamo = new DynamoDBClient({
      endpoint: dynamodbEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await dynamo.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: 'LEFTOVER' }, sk: { S: 'x' } } }));

    await stack.reset();

    const items = await dynamo.send(new ScanCommand({ TableName: tableName }));
    const table = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    dynamo.destroy();
    expect(items.Items?.filter((item) => item.pk?.S === 'LEFTOVER')).toEqual([]);
    expect(table.Table?.TableStatus).toBe('ACTIVE');
    expect((await stack.request('GET', `/local/services/${serviceId}/endpoints`)).status).toBe(404);
    expect(await describeConnections([])).toEqual([]);
    expect(await stack.outbox()).toEqual([]);
    expect(await stack.notifications()).toEqual([]);
    expect(await stack.dlq()).toEqual([]);
    expect((await stack.request('GET', '/local/faults')).body).toEqual(NO_FAULTS);
    // The describe above is the only call since the reset.
    expect(await stack.calls()).toEqual({
      byAction: { DescribeVpcEndpointConnections: { received: 1, failed: 0 } },
      byEndpoint: {},
      byAccountRegion: { '000000000000/us-east-1': { byAction: { DescribeVpcEndpointConnections: { received: 1, failed: 0 } } } },
    });
  });
});

describe('what a page on another origin can send', () => {
  // A browser lets any page POST a form or text/plain to 127.0.0.1 without asking first, and says
  // where from in Origin. The control routes and the simulated AWS APIs must do nothing for it.
  const send = (path: string, init: { method?: string; headers?: Record<string, string>; body?: string }) =>
    fetch(`${stack.baseUrl}${path}`, { method: init.method ?? 'POST', headers: init.headers, body: init.body });
  const json = { 'content-type': 'application/json' };

  /** What such a request could have changed: the services, the faults, the endpoints' states. */
  async function everything(serviceId: string): Promise<unknown> {
    return {
      services: (await stack.request('GET', '/local/services')).body,
      faults: (await stack.request('GET', '/local/faults')).body,
      endpoints: await stack.listEndpoints(serviceId),
    };
  }

  it.each([
    ['another local port', 'http://127.0.0.1:8080'],
    ['a site on the internet', 'https://evil.example'],
    ['a sandboxed page or file (null)', 'null'],
  ])('refuses a cross-origin request from %s with 403, changing nothing', async (_, origin) => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: CONSUMER_A });
    const before = await everything(serviceId);

    const fault = await send('/local/faults', { headers: { ...json, origin }, body: JSON.stringify({ ec2ThrottleRate: 1 }) });
    const service = await send('/local/services', { headers: { ...json, origin }, body: JSON.stringify({}) });
    const endpoint = await send(`/local/services/${serviceId}/endpoints`, { headers: { ...json, origin }, body: JSON.stringify({ ownerAccountId: CONSUMER_B }) });
    const reset = await send('/local/reset', { headers: { origin } });
    // EC2's own protocol is a form: exactly what a page may post anywhere.
    const accept = await send('/aws/ec2', {
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
      body: new URLSearchParams({ Action: 'AcceptVpcEndpointConnections', Version: '2016-11-15', ServiceId: serviceId, 'VpcEndpointId.1': vpcEndpointId }).toString(),
    });

    for (const response of [fault, service, endpoint, reset, accept]) {
      expect(response.status).toBe(403);
      expect(await response.json()).toEqual({ error: { code: 'Forbidden', message: expect.stringContaining(`a request from a page on ${origin} is refused`) } });
    }
    expect(await everything(serviceId)).toEqual(before);
  });

  it.each([
    ['text/plain', 'text/plain;charset=UTF-8'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['no content type', undefined],
  ])('refuses a JSON body sent as %s with 415 saying what to send, changing nothing', async (_, contentType) => {
    const { serviceId } = await stack.createService();
    const before = await everything(serviceId);
    const headers = contentType ? { 'content-type': contentType } : undefined;

    const fault = await send('/local/faults', { headers, body: JSON.stringify({ ec2ThrottleRate: 1 }) });
    const endpoint = await send(`/local/services/${serviceId}/endpoints`, { headers, body: JSON.stringify({ ownerAccountId: CONSUMER_B }) });

    for (const response of [fault, endpoint]) {
      expect(response.status).toBe(415);
      expect(await response.json()).toEqual({
        error: { code: 'UnsupportedMediaType', message: expect.stringContaining("-H 'content-type: application/json'") },
      });
    }
    expect(await everything(serviceId)).toEqual(before);
  });

  it("takes the stack's own origin, JSON with a charset, and a POST with no body at all", async () => {
    const port = new URL(stack.baseUrl).port;

    const fromItself = await send('/local/services', { headers: { ...json, origin: `http://127.0.0.1:${port}` }, body: '{}' });
    const fromLocalhost = await send('/local/services', { headers: { 'content-type': 'application/json; charset=utf-8', origin: `http://localhost:${port}` }, body: '{}' });
    const reset = await send('/local/reset', {});

    expect([fromItself.status, fromLocalhost.status, reset.status]).toEqual([201, 201, 200]);
  });

  it('says nosniff on every answer of its own: control routes, errors, the simulated AWS APIs, and the gateway', async () => {
    const answers = await Promise.all([
      send('/local/health', { method: 'GET' }),
      send('/local/nothing-here', { method: 'GET' }),
      send('/local/services', { headers: json, body: 'not json' }),
      send('/aws/ec2', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=DescribeVpcEndpointConnections&Version=2016-11-15' }),
      send('/aws/sns', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=Nothing' }),
      send('/connections', { method: 'GET' }), // unsigned: the gateway refuses it
      send('/no/such/route', { method: 'GET' }),
    ]);

    for (const answer of answers) expect(answer.headers.get('x-content-type-options'), answer.url).toBe('nosniff');
    // The unsigned EC2 call is refused as EC2 refuses it (AuthFailure, 401): it tells accounts apart by their credentials.
    expect(answers.map((answer) => answer.status)).toEqual([200, 404, 400, 401, 400, 401, 404]);
  });
});
