import {
  AcceptVpcEndpointConnectionsCommand,
  DescribeVpcEndpointConnectionsCommand,
  DescribeVpcEndpointServiceConfigurationsCommand,
  type DescribeVpcEndpointServiceConfigurationsCommandInput,
  EC2Client,
  RejectVpcEndpointConnectionsCommand,
  type DescribeVpcEndpointConnectionsCommandInput,
  type UnsuccessfulItem,
} from '@aws-sdk/client-ec2';
import { PublishBatchCommand, SNSClient, type PublishBatchCommandInput, type PublishBatchRequestEntry } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash, randomBytes } from 'node:crypto';

export const newServiceId = () => `vpce-svc-${randomBytes(9).toString('hex').slice(0, 17)}`;
export const newEndpointId = () => `vpce-${randomBytes(9).toString('hex').slice(0, 17)}`;

interface FakeConnection {
  serviceId: string;
  endpointId: string;
  owner: string;
  state: string;
  region?: string;
}

/**
 * EC2 and SNS mocked at the SDK client (aws-sdk-client-mock): a handful of
 * connections whose state Accept and Reject change, and the published messages.
 * Enough for handler tests; the local stack's simulator speaks the real wire.
 */
export function fakeAws() {
  const connections = new Map<string, FakeConnection>();
  const published: PublishBatchRequestEntry[] = [];
  const ec2 = mockClient(EC2Client);
  const sns = mockClient(SNSClient);
  const overrides: {
    unsuccessful?: (endpointId: string) => UnsuccessfulItem['Error'] | undefined;
    /** How many of the next publishes fail, as SNS does when it is unavailable. */
    failingPublishes?: number;
    /** How many of the next DescribeVpcEndpointServiceConfigurations calls EC2 refuses (RequestLimitExceeded). */
    failingServiceDescriptions?: number;
  } = {};

  ec2.on(DescribeVpcEndpointConnectionsCommand).callsFake((input: DescribeVpcEndpointConnectionsCommandInput) => {
    const filter = (name: string) => input.Filters?.find((f) => f.Name === name)?.Values;
    const matches = [...connections.values()].filter(
      (c) =>
        (filter('service-id')?.includes(c.serviceId) ?? true) &&
        (filter('vpc-endpoint-id')?.includes(c.endpointId) ?? true) &&
        (filter('vpc-endpoint-owner')?.includes(c.owner) ?? true) &&
        (filter('vpc-endpoint-state')?.some((s) => s.toLowerCase() === c.state.toLowerCase()) ?? true),
    );
    return {
      VpcEndpointConnections: matches.map((c) => ({
        ServiceId: c.serviceId,
        VpcEndpointId: c.endpointId,
        VpcEndpointOwner: c.owner,
        VpcEndpointState: c.state,
        VpcEndpointRegion: c.region,
      })),
    };
  });
  const act = (to: string) => (input: { ServiceId?: string; VpcEndpointIds?: string[] }) => {
    const Unsuccessful: UnsuccessfulItem[] = [];
    for (const id of input.VpcEndpointIds ?? []) {
      const error = overrides.unsuccessful?.(id);
      const connection = connections.get(id);
      if (error) Unsuccessful.push({ ResourceId: id, Error: error });
      else if (!connection || connection.state !== 'pendingAcceptance') {
        Unsuccessful.push({ ResourceId: id, Error: { Code: 'InvalidState', Message: `endpoint ${id} is ${connection?.state}` } });
      } else connection.state = to;
    }
    return { Unsuccessful };
  };
  // The services the connections name, with the tags a test gave them (serviceTags).
  const serviceTags = new Map<string, Record<string, string>>();
  ec2.on(DescribeVpcEndpointServiceConfigurationsCommand).callsFake((input: DescribeVpcEndpointServiceConfigurationsCommandInput) => {
    if (overrides.failingServiceDescriptions) {
      overrides.failingServiceDescriptions -= 1;
      throw Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded' });
    }
    const known = new Set([...[...connections.values()].map((c) => c.serviceId), ...serviceTags.keys()]);
    const ids = input.ServiceIds?.length ? input.ServiceIds : [...known];
    const missing = ids.find((id) => !known.has(id));
    if (missing) throw Object.assign(new Error(`The Vpc Endpoint Service Id '${missing}' does not exist`), { name: 'InvalidVpcEndpointServiceId.NotFound' });
    return { ServiceConfigurations: ids.map((ServiceId) => ({ ServiceId, Tags: Object.entries(serviceTags.get(ServiceId) ?? {}).map(([Key, Value]) => ({ Key, Value })) })) };
  });
  ec2.on(AcceptVpcEndpointConnectionsCommand).callsFake(act('pending'));
  ec2.on(RejectVpcEndpointConnectionsCommand).callsFake(act('rejected'));
  sns.on(PublishBatchCommand).callsFake((input: PublishBatchCommandInput) => {
    const Successful = [];
    const Failed = [];
    for (const entry of input.PublishBatchRequestEntries ?? []) {
      if (overrides.failingPublishes) {
        overrides.failingPublishes -= 1;
        Failed.push({ Id: entry.Id, Code: 'InternalError', SenderFault: false, Message: 'SNS is unavailable' });
        continue;
      }
      published.push(entry);
      Successful.push({ Id: entry.Id, MessageId: String(published.length) });
    }
    return { Successful, Failed };
  });

  return {
    ec2,
    sns,
    overrides,
    connections,
    serviceTags,
    /** A consumer asks to connect: the connection is pendingAcceptance. */
    connect(serviceId: string, owner: string, extra: Partial<FakeConnection> = {}): FakeConnection {
      const connection = { serviceId, endpointId: newEndpointId(), owner, state: 'pendingAcceptance', ...extra };
      connections.set(connection.endpointId, connection);
      return connection;
    },
    /** The events published to the outbound topic, parsed. */
    events: () => published.map((p) => ({ ...JSON.parse(p.Message ?? '{}'), attributes: p.MessageAttributes })),
    restore() {
      ec2.restore();
      sns.restore();
    },
  };
}

/** One message of the notifications queue, as the event source mapping hands it to the function. */
export function sqsRecord(body: string, messageId: string = randomBytes(16).toString('hex')) {
  return {
    messageId,
    receiptHandle: `AQEB${randomBytes(24).toString('base64')}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'AIDAIT2UOQQY3AUEKVGXU',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: createHash('md5').update(body).digest('hex'),
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:111111111111:vpce-gatekeeper-dev-notifications',
    awsRegion: 'us-east-1',
  };
}

/** An SQS event as Lambda's event source mapping delivers it: one record per message body. */
export function sqsEvent(...bodies: string[]) {
  return { Records: bodies.map((body) => sqsRecord(body)) };
}

export const connectMessage = (c: FakeConnection) =>
  JSON.stringify({ eventType: 'Connect', serviceId: c.serviceId, vpcEndpointId: c.endpointId, vpcEndpointState: 'pendingAcceptance' });
