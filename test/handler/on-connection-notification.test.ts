import { readFileSync } from 'node:fs';
import { AcceptVpcEndpointConnectionsCommand, DescribeVpcEndpointServiceConfigurationsCommand, RejectVpcEndpointConnectionsCommand } from '@aws-sdk/client-ec2';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '../../handlers/on-connection-notification';
import { documentClient } from '../../lib/aws/clients';
import { getConnection, putConnection } from '../../lib/aws/connection-store';
import { putPolicy } from '../../lib/aws/policy-store';
import { parsePolicy } from '../../lib/domain/policy';
import { connectMessage, fakeAws, newServiceId, sqsEvent, sqsRecord } from '../support/fake-ec2';
import { storeOldPolicyVersion } from '../support/table-fixtures';

const ALLOWED = '111122223333';
const DENIED = '444455556666';
const STRANGER = '999988887777';
// What every fixture in events/ names.
const FIXTURE_SERVICE = 'vpce-svc-0a1b2c3d4e5f60718';
const FIXTURE_ENDPOINT = 'vpce-0123456789abcdef0';

const context = {
  functionName: 'on-connection-notification',
  awsRequestId: 'test-request',
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

const invoke = (event: unknown) => handler(event, context) as Promise<SQSBatchResponse>;
const failedIds = (response: SQSBatchResponse) => response.batchItemFailures.map((failure) => failure.itemIdentifier);

function fixture(name: string): { Records: { messageId: string; body: string }[] } {
  return JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8'));
}

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

describe('on-connection-notification, fed from the notifications queue', () => {
  it('decides a batch: accepts the allowed, rejects the denied, holds the rest, and reports no failure', async () => {
    const allowed = aws.connect(serviceId, ALLOWED);
    const denied = aws.connect(serviceId, DENIED);
    const stranger = aws.connect(serviceId, STRANGER);

    const response = await invoke(sqsEvent(connectMessage(allowed), connectMessage(denied), connectMessage(stranger)));

    expect(response).toEqual({ batchItemFailures: [] });
    expect(aws.connections.get(allowed.endpointId)?.state).toBe('pending');
    expect(aws.connections.get(denied.endpointId)?.state).toBe('rejected');
    expect(aws.connections.get(stranger.endpointId)?.state).toBe('pendingAcceptance');
    const accepted = await getConnection(serviceId, allowed.endpointId);
    expect(accepted?.decision).toMatchObject({ outcome: 'accept', acted: true, rule: 'allow:acme-prod', decidedBy: 'policy' });
    expect(accepted?.decision?.reason).toBe(`account ${ALLOWED} matched allow entry 'acme-prod'`);
    expect((await getConnection(serviceId, denied.endpointId))?.decision).toMatchObject({ outcome: 'reject', rule: 'deny:offboarded' });
    expect((await getConnection(serviceId, stranger.endpointId))?.decision).toMatchObject({ outcome: 'hold', acted: false });
    const events = aws.events();
    expect(events.map((e) => [e.endpointId, e.eventType]).sort()).toEqual(
      [
        [allowed.endpointId, 'accepted'],
        [denied.endpointId, 'rejected'],
        [stranger.endpointId, 'approval-needed'],
      ].sort(),
    );
    expect(events.find((e) => e.eventType === 'approval-needed')?.actions.accept).toBe(`/services/${serviceId}/connections/${stranger.endpointId}/accept`);
  });

  it('accepts once when copies of a notification arrive in one batch and in later ones', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    const message = connectMessage(connection);

    await invoke(sqsEvent(message, message, message));
    const later = await invoke(sqsEvent(message, JSON.stringify({ eventType: 'Accept', serviceId, vpcEndpointId: connection.endpointId })));

    expect(later).toEqual({ batchItemFailures: [] });
    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 1);
    expect((await getConnection(serviceId, connection.endpointId))?.history.filter((event) => event.type === 'decision')).toHaveLength(1);
    expect(aws.events().map((e) => e.eventType)).toEqual(['accepted']);
  });

  it('reads only the records for a batch they already show: no policy, no EC2, no write', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    const message = connectMessage(connection);
    await invoke(sqsEvent(message));
    aws.ec2.resetHistory();
    const requests: string[] = [];
    documentClient.middlewareStack.add(
      (next, context) => (args) => {
        requests.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'seeRequests' },
    );

    try {
      const copies = await invoke(sqsEvent(message, JSON.stringify({ eventType: 'Accept', serviceId, vpcEndpointId: connection.endpointId })));

      expect(copies).toEqual({ batchItemFailures: [] });
      expect(requests).toEqual(['BatchGetItemCommand']);
      expect(aws.ec2.calls()).toHaveLength(0);
    } finally {
      documentClient.middlewareStack.remove('seeRequests');
    }
  });

  it('reports only the messages whose connection EC2 failed on, and decides them when they come back', async () => {
    const fine = aws.connect(serviceId, ALLOWED);
    const failing = aws.connect(serviceId, ALLOWED);
    aws.overrides.unsuccessful = (id) => (id === failing.endpointId ? { Code: 'InternalError', Message: 'try again' } : undefined);
    const failingRecord = sqsRecord(connectMessage(failing));

    const response = await invoke({ Records: [sqsRecord(connectMessage(fine)), failingRecord] });

    expect(failedIds(response)).toEqual([failingRecord.messageId]);
    expect(aws.connections.get(fine.endpointId)?.state).toBe('pending');
    expect(aws.connections.get(failing.endpointId)?.state).toBe('pendingAcceptance');
    expect((await getConnection(serviceId, failing.endpointId))?.history.at(-1)).toMatchObject({ type: 'action-failed', code: 'InternalError' });

    aws.overrides.unsuccessful = undefined;
    const redelivered = await invoke({ Records: [{ ...failingRecord, attributes: { ...failingRecord.attributes, ApproximateReceiveCount: '2' } }] });

    expect(redelivered).toEqual({ batchItemFailures: [] });
    expect(aws.connections.get(failing.endpointId)?.state).toBe('pending');
    expect(await getConnection(serviceId, failing.endpointId)).toMatchObject({ decision: { outcome: 'accept', acted: true } });
  });

  it('reports a record it cannot read as failed, so that it ends in the dead-letter queue, and decides the rest', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    const unreadable = { messageId: 'unreadable-1', eventSource: 'aws:sqs', receiptHandle: 'x' }; // no body

    const response = await invoke({ Records: [unreadable, sqsRecord(connectMessage(connection))] });

    expect(failedIds(response)).toEqual(['unreadable-1']);
    expect(aws.connections.get(connection.endpointId)?.state).toBe('pending');
  });

  it('throws for the whole batch when a record has no messageId to report, and for an event that is not from SQS', async () => {
    const connection = aws.connect(serviceId, ALLOWED);

    await expect(invoke({ Records: [{ body: connectMessage(connection) }] })).rejects.toThrow(/without a messageId/);
    await expect(invoke({ Records: [{ EventSource: 'aws:sns', Sns: { Message: '{}' } }] })).rejects.toThrow(/without a messageId/);
    await expect(invoke({ detail: 'scheduled' })).rejects.toThrow('not an SQS event');
    expect(aws.ec2).not.toHaveReceivedAnyCommand();
  });

  it('never auto-accepts a service with no policy and no default', async () => {
    const noPolicy = newServiceId();
    const connection = aws.connect(noPolicy, ALLOWED);

    await invoke(sqsEvent(connectMessage(connection)));

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(await getConnection(noPolicy, connection.endpointId)).toMatchObject({ decision: { outcome: 'hold', rule: 'no-policy' } });
  });

  it('decides nothing, and hands the message back, when the policy cannot be read', async () => {
    const connection = aws.connect(serviceId, ALLOWED);
    await storeOldPolicyVersion(serviceId, 99, '{"mode":"sometimes"}');
    const record = sqsRecord(connectMessage(connection));

    const response = await invoke({ Records: [record] });

    expect(failedIds(response)).toEqual([record.messageId]);
    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(aws.connections.get(connection.endpointId)?.state).toBe('pendingAcceptance');
  });

  it('sweeps the pending connections of a service when a message names no endpoint', async () => {
    const first = aws.connect(serviceId, ALLOWED);
    const second = aws.connect(serviceId, ALLOWED);
    const stranger = aws.connect(serviceId, STRANGER);

    await invoke(sqsEvent(JSON.stringify({ eventType: 'Connect', serviceId })));

    expect([first, second, stranger].map((c) => aws.connections.get(c.endpointId)?.state)).toEqual(['pending', 'pending', 'pendingAcceptance']);
    expect(aws.ec2).not.toHaveReceivedCommand(RejectVpcEndpointConnectionsCommand);
  });

  it('records a Delete that arrives before its Connect, and then does not act', async () => {
    const connection = aws.connect(serviceId, ALLOWED, { state: 'deleted' });

    await invoke(sqsEvent(JSON.stringify({ eventType: 'Delete', serviceId, vpcEndpointId: connection.endpointId })));
    await invoke(sqsEvent(connectMessage(connection)));

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    const record = await getConnection(serviceId, connection.endpointId);
    expect(record?.state).toBe('deleted');
    expect(record?.decision).toBeUndefined();
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

    await invoke(sqsEvent(JSON.stringify({ eventType: 'Accept', serviceId, vpcEndpointId: connection.endpointId })));

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(await getConnection(serviceId, connection.endpointId)).toMatchObject({
      state: 'available',
      decision: { outcome: 'accept', acted: true, rule: 'allow:acme-prod' },
    });
    expect(aws.events().map((e) => e.eventType)).toEqual(['accepted']);
  });

  it('decides the endpoint that the fixtures in events/ name, in each notification format, once', async () => {
    const names = ['sqs-connect.json', 'sqs-connect-pascal-case.json', 'sqs-connect-events-list.json', 'sqs-plain-text.json'];
    const records = names.flatMap((name) => fixture(name).Records);
    aws.connections.set(FIXTURE_ENDPOINT, { serviceId: FIXTURE_SERVICE, endpointId: FIXTURE_ENDPOINT, owner: STRANGER, state: 'pendingAcceptance' });

    const response = await invoke({ Records: records });

    expect(records.every((record) => record.body.includes(FIXTURE_ENDPOINT))).toBe(true);
    expect(response).toEqual({ batchItemFailures: [] });
    expect(await getConnection(FIXTURE_SERVICE, FIXTURE_ENDPOINT)).toMatchObject({ ownerAccountId: STRANGER, decision: { outcome: 'hold' } });
    expect(aws.events().map((e) => e.eventType)).toEqual(['approval-needed']);
  });
});

describe("a service governed by the policy its vpce-gatekeeper:policy tag names", () => {
  const tagged = (policy: string) => {
    const id = newServiceId();
    aws.serviceTags.set(id, { 'vpce-gatekeeper:policy': policy });
    return id;
  };

  beforeEach(async () => {
    await putPolicy('web-tier', parsePolicy({ allow: [{ account: ALLOWED, label: 'web' }], onUnmatched: 'hold' }), { actor: 'test' });
  });

  it('is described once for batches decided at the same time, and decided by that policy in each', async () => {
    const web = tagged('web-tier');
    const [first, second] = [aws.connect(web, ALLOWED), aws.connect(web, ALLOWED)];

    const responses = await Promise.all([invoke(sqsEvent(connectMessage(first))), invoke(sqsEvent(connectMessage(second)))]);

    expect(responses).toEqual([{ batchItemFailures: [] }, { batchItemFailures: [] }]);
    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointServiceConfigurationsCommand, 1);
    for (const { endpointId } of [first, second]) {
      expect((await getConnection(web, endpointId))?.decision).toMatchObject({ outcome: 'accept', rule: 'allow:web' });
    }
  });

  it('decides nothing while its tags cannot be read (no policy guessed), and reads them again for the next batch', async () => {
    const web = tagged('web-tier');
    const connection = aws.connect(web, ALLOWED);
    aws.overrides.failingServiceDescriptions = 1;

    const refused = await invoke(sqsEvent(connectMessage(connection)));

    expect(refused.batchItemFailures).toHaveLength(1);
    expect(aws.connections.get(connection.endpointId)?.state).toBe('pendingAcceptance');
    expect(await getConnection(web, connection.endpointId)).toBeUndefined();

    const retried = await invoke(sqsEvent(connectMessage(connection)));

    expect(retried).toEqual({ batchItemFailures: [] });
    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointServiceConfigurationsCommand, 2);
    expect((await getConnection(web, connection.endpointId))?.decision).toMatchObject({ outcome: 'accept', rule: 'allow:web' });
  });
});
