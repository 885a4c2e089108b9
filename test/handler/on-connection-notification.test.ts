import { readFileSync } from 'node:fs';
import { AcceptVpcEndpointConnectionsCommand, DescribeVpcEndpointConnectionsCommand, RejectVpcEndpointConnectionsCommand } from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '../../handlers/on-connection-notification';
import { getConnection, putConnection } from '../../lib/aws/connection-store';
import { putPolicy } from '../../lib/aws/policy-store';
import { parsePolicy } from '../../lib/domain/policy';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { documentClient } from '../../lib/aws/clients';
import { keys } from '../../lib/aws/table';
import { TEST_TABLE } from '../support/aws-env';
import { connectMessage, fakeAws, newServiceId, snsEvent } from '../support/fake-ec2';

const ALLOWED = '111122223333';
const DENIED = '444455556666';
const STRANGER = '999988887777';

const context = {
  functionName: 'on-connection-notification',
  awsRequestId: 'test-request',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const invoke = (message: string) => handler(snsEvent(message), context);

let aws: ReturnType<typeof fakeAws>;
let serviceId: string;

beforeEach(async () => {
  aws = fakeAws();
  serviceId = newServiceId();
  await putPolicy(
    serviceId,
    parsePolicy({
      allow: [{ account: ALLOWED, label: 'acme-prod' }],
      deny: [{ account: DENIED, label: 'offboarded' }],
      onUnmatched: 'hold',
    }),
    { actor: 'test' },
  );
});

afterEach(() => aws.restore());

describe('on-connection-notification', () => {
  it('accepts a connection from an allowed account and records why', async () => {
    const connection = aws.connect(serviceId, ALLOWED);

    await invoke(connectMessage(connection));

    expect(aws.ec2).toHaveReceivedCommandWith(AcceptVpcEndpointConnectionsCommand, {
      ServiceId: serviceId,
      VpcEndpointIds: [connection.endpointId],
    });
    const record = await getConnection(serviceId, connection.endpointId);
    expect(record).toMatchObject({
      state: 'pending',
      ownerAccountId: ALLOWED,
      decision: { outcome: 'accept', acted: true, rule: 'allow:acme-prod', decidedBy: 'policy' },
    });
    expect(record?.decision?.reason).toBe(`account ${ALLOWED} matched allow entry 'acme-prod'`);
    expect(record?.history.map((event) => event.type)).toEqual(['first-seen', 'decision', 'state-changed']);
    expect(record?.outbox).toBeUndefined();
    expect(aws.events()).toMatchObject([
      {
        eventType: 'accepted',
        serviceId,
        endpointId: connection.endpointId,
        attributes: { eventType: { DataType: 'String', StringValue: 'accepted' }, serviceId: { StringValue: serviceId } },
      },
    ]);
  });

  it('rejects a connection from a denied account', async () => {
    const connection = aws.connect(serviceId, DENIED);

    await invoke(connectMessage(connection));

    expect(aws.ec2).toHaveReceivedCommandTimes(RejectVpcEndpointConnectionsCommand, 1);
    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(await getConnection(serviceId, connection.endpointId)).toMatchObject({
      state: 'rejected',
      decision: { outcome: 'reject', rule: 'deny:offboarded' },
    });
    expect(aws.events().map((e) => e.eventType)).toEqual(['rejected']);
  });

  it('holds an unmatched account and announces it once, however often it is notified', async () => {
    const connection = aws.connect(serviceId, STRANGER);

    await invoke(connectMessage(connection));
    await invoke(connectMessage(connection));

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(aws.ec2).not.toHaveReceivedCommand(RejectVpcEndpointConnectionsCommand);
    const record = await getConnection(serviceId, connection.endpointId);
    expect(record).toMatchObject({ state: 'pendingAcceptance', decision: { outcome: 'hold', acted: false, rule: 'onUnmatched:hold' } });
    const events = aws.events();
    expect(events.map((e) => e.eventType)).toEqual(['approval-needed']);
    expect(events[0].actions.accept).toBe(`/services/${serviceId}/connections/${connection.endpointId}/accept`);
  });

  it('never auto-accepts a service with no policy and no default', async () => {
    const unmanagedPolicy = newServiceId();
    const connection = aws.connect(unmanagedPolicy, ALLOWED);

    await invoke(connectMessage(connection));

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(await getConnection(unmanagedPolicy, connection.endpointId)).toMatchObject({ decision: { outcome: 'hold', rule: 'no-policy' } });
  });

  it('makes one Accept call when the same notification is delivered three times at once', async () => {
    const connection = aws.connect(serviceId, ALLOWED);

    await Promise.all([1, 2, 3].map(() => invoke(connectMessage(connection))));

    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 1);
    const record = await getConnection(serviceId, connection.endpointId);
    expect(record?.history.filter((event) => event.type === 'decision')).toHaveLength(1);
    expect(aws.events().filter((e) => e.eventType === 'accepted')).toHaveLength(1);
  });

  it('does not read EC2 again for a copy of a notification it has handled, nor for the Accept its own accept causes', async () => {
    const connection = aws.connect(serviceId, ALLOWED);

    await invoke(connectMessage(connection));
    await invoke(connectMessage(connection));
    await invoke(JSON.stringify({ eventType: 'Accept', serviceId, vpcEndpointId: connection.endpointId }));

    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointConnectionsCommand, 1);
    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 1);
  });

  it('lets the retry of a failed delivery through, rather than taking it for a copy', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    aws.overrides.unsuccessful = () => ({ Code: 'InternalError', Message: 'try again' });
    await expect(invoke(connectMessage(connection))).rejects.toThrow();
    aws.overrides.unsuccessful = undefined;

    await invoke(connectMessage(connection));

    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointConnectionsCommand, 3); // first try, its re-read, the retry
    expect(aws.connections.get(connection.endpointId)?.state).toBe('pending');
  });

  it('sweeps the pending connections of a service when the message names no endpoint', async () => {
    const first = aws.connect(serviceId, ALLOWED);
    const second = aws.connect(serviceId, ALLOWED);
    aws.connect(serviceId, STRANGER);

    await invoke(JSON.stringify({ eventType: 'Connect', serviceId }));

    expect(aws.ec2).toHaveReceivedCommandWith(DescribeVpcEndpointConnectionsCommand, {
      Filters: [
        { Name: 'service-id', Values: [serviceId] },
        { Name: 'vpc-endpoint-state', Values: ['pendingAcceptance'] },
      ],
    });
    // one batched call for both allowed connections
    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 1);
    expect(aws.ec2).toHaveReceivedCommandWith(AcceptVpcEndpointConnectionsCommand, {
      VpcEndpointIds: [first.endpointId, second.endpointId],
    });
  });

  it('records a Delete that arrives before its Connect, and then does not act', async () => {
    const connection = aws.connect(serviceId, ALLOWED, { state: 'deleted' });

    await invoke(JSON.stringify({ eventType: 'Delete', serviceId, vpcEndpointId: connection.endpointId }));
    await invoke(connectMessage(connection));

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    const record = await getConnection(serviceId, connection.endpointId);
    expect(record).toMatchObject({ state: 'deleted', version: 1 });
    expect(record?.decision).toBeUndefined();
  });

  it('records what is true when EC2 says the connection was already decided', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    aws.overrides.unsuccessful = (id) => {
      // someone accepted it in the console a moment earlier
      const c = aws.connections.get(id);
      if (c) c.state = 'available';
      return { Code: 'InvalidState', Message: 'already accepted' };
    };

    await invoke(connectMessage(connection));

    const record = await getConnection(serviceId, connection.endpointId);
    expect(record?.state).toBe('available');
    expect(record?.claim).toBeUndefined();
    expect(record?.history.map((e) => e.type)).toContain('state-changed');
  });

  it('records a failed action, announces it, and throws so the notification is retried', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    aws.overrides.unsuccessful = () => ({ Code: 'InternalError', Message: 'try again' });

    await expect(invoke(connectMessage(connection))).rejects.toThrow(/will be retried/);

    const failed = await getConnection(serviceId, connection.endpointId);
    expect(failed?.claim?.status).toBe('failed');
    expect(failed?.history.at(-1)).toMatchObject({ type: 'action-failed', code: 'InternalError' });
    expect(aws.events().map((e) => e.eventType)).toEqual(['action-failed']);

    aws.overrides.unsuccessful = undefined;
    await invoke(connectMessage(connection));

    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 2);
    expect(await getConnection(serviceId, connection.endpointId)).toMatchObject({ state: 'pending', decision: { outcome: 'accept' } });
  });

  it('finishes an accept that a crashed invocation made but never recorded, without a second call', async () => {
    const connection = aws.connect(serviceId, ALLOWED, { state: 'available' });
    const now = new Date().toISOString();
    await putConnection(
      {
        serviceId,
        endpointId: connection.endpointId,
        ownerAccountId: ALLOWED,
        region: 'us-east-1',
        state: 'pendingAcceptance',
        claim: {
          outcome: 'accept',
          from: 'pendingAcceptance',
          rule: 'allow:acme-prod',
          reason: 'r',
          decidedBy: 'policy',
          token: 't',
          // it died a while ago: its lease has run out
          leaseUntil: new Date(Date.now() - 1_000).toISOString(),
          status: 'acting',
        },
        createdAt: now,
        updatedAt: now,
        version: 1,
        history: [],
      },
      undefined,
    );

    await invoke(JSON.stringify({ eventType: 'Accept', serviceId, vpcEndpointId: connection.endpointId }));

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(await getConnection(serviceId, connection.endpointId)).toMatchObject({
      state: 'available',
      decision: { outcome: 'accept', acted: true, rule: 'allow:acme-prod' },
    });
    expect(aws.events().map((e) => e.eventType)).toEqual(['accepted']);
  });

  it('decides nothing when the policy cannot be read', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    await documentClient.send(
      new PutCommand({
        TableName: TEST_TABLE,
        Item: { ...keys.policyVersion(serviceId, 99), policyId: serviceId, version: 99, document: '{"mode":"sometimes"}' },
      }),
    );

    await expect(invoke(connectMessage(connection))).rejects.toThrow(/invalid policy/);

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(await getConnection(serviceId, connection.endpointId)).toBeUndefined();
  });

  it('refuses an event that is not an SNS event', async () => {
    await expect(handler({ Records: [{ EventSource: 'aws:sqs' }] }, context)).rejects.toThrow('not an SNS event');
    expect(aws.ec2).not.toHaveReceivedAnyCommand();
  });

  it.each(['sns-connect.json', 'sns-connect-pascal-case.json', 'sns-connect-events-list.json', 'sns-plain-text.json'])(
    'acts on the endpoint named by the fixture %s',
    async (fixture) => {
      const event = JSON.parse(readFileSync(new URL(`../../events/${fixture}`, import.meta.url), 'utf8'));
      const message: string = event.Records[0].Sns.Message;
      const fixedService = 'vpce-svc-0a1b2c3d4e5f60718';
      // Every fixture names the same endpoint: forget what the previous one left behind.
      await documentClient.send(new DeleteCommand({ TableName: TEST_TABLE, Key: keys.connection(fixedService, 'vpce-0123456789abcdef0') }));
      aws.connections.set('vpce-0123456789abcdef0', {
        serviceId: fixedService,
        endpointId: 'vpce-0123456789abcdef0',
        owner: STRANGER,
        state: 'pendingAcceptance',
      });

      await handler(event, context);

      expect(aws.ec2).toHaveReceivedCommandWith(DescribeVpcEndpointConnectionsCommand, {
        Filters: expect.arrayContaining([{ Name: 'vpc-endpoint-id', Values: ['vpce-0123456789abcdef0'] }]),
      });
      expect(message).toContain('vpce-0123456789abcdef0');
      expect((await getConnection(fixedService, 'vpce-0123456789abcdef0'))?.ownerAccountId).toBe(STRANGER);
    },
  );
});
