import { AcceptVpcEndpointConnectionsCommand, DescribeVpcEndpointConnectionsCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { getConnection } from '../../lib/aws/connection-store';
import { putPolicy } from '../../lib/aws/policy-store';
import { parsePolicy } from '../../lib/domain/policy';
import { MAX_SERVICES_PER_MESSAGE } from '../../lib/domain/notification-batch';
import { handleNotificationBatch, type NotificationMessage } from '../../lib/notifications';
import { connectMessage, fakeAws, newServiceId } from '../support/fake-ec2';
import { storeOldPolicyVersion } from '../support/table-fixtures';

const ALLOWED = '111122223333';
let aws: ReturnType<typeof fakeAws>;
let serviceId: string;
let sequence = 0;

const message = (body: string): NotificationMessage => ({ messageId: `m-${++sequence}`, body });

beforeEach(async () => {
  aws = fakeAws();
  serviceId = newServiceId();
  await putPolicy(serviceId, parsePolicy({ allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' }), { actor: 'test' });
}, 30_000);

afterEach(() => aws.restore());

describe('a batch of notifications', () => {
  it('decides 250 connections, each delivered twice, with 2 Describe and 3 Accept calls', async () => {
    const connections = Array.from({ length: 250 }, () => aws.connect(serviceId, ALLOWED));
    const messages = [...connections, ...connections].map((c) => message(connectMessage(c)));

    const outcome = await handleNotificationBatch(messages);

    expect(outcome.failedMessageIds).toEqual([]);
    expect(outcome.counts).toMatchObject({ observed: 250, accepted: 250, failed: 0 });
    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointConnectionsCommand, 2); // 200 endpoint ids per call
    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 3); // 100 per call
    expect([...aws.connections.values()].every((c) => c.state === 'pending')).toBe(true);
    expect(aws.events().filter((e) => e.eventType === 'accepted')).toHaveLength(250);
  }, 60_000);

  it('skips, without reading EC2, what the records already show: copies in a later batch, and the Accept of our own accept', async () => {
    const connections = Array.from({ length: 3 }, () => aws.connect(serviceId, ALLOWED));
    await handleNotificationBatch(connections.map((c) => message(connectMessage(c))));
    aws.ec2.resetHistory();

    const later = await handleNotificationBatch([
      ...connections.map((c) => message(connectMessage(c))),
      ...connections.map((c) => message(JSON.stringify({ eventType: 'Accept', serviceId, vpcEndpointId: c.endpointId }))),
    ]);

    expect(later.failedMessageIds).toEqual([]);
    expect(aws.ec2).not.toHaveReceivedAnyCommand();
  });

  it('hands back only the messages whose connections EC2 failed to act on, and decides them when they come again', async () => {
    const [good, bad] = [aws.connect(serviceId, ALLOWED), aws.connect(serviceId, ALLOWED)];
    aws.overrides.unsuccessful = (id) => (id === bad?.endpointId ? { Code: 'InternalError', Message: 'try again' } : undefined);
    const first = message(connectMessage(good!));
    const second = message(connectMessage(bad!));
    const copy = { ...second, messageId: 'm-copy' };

    const outcome = await handleNotificationBatch([first, second, copy]);

    expect(outcome.failedMessageIds).toEqual([second.messageId, 'm-copy']);
    expect(outcome.counts).toMatchObject({ accepted: 1, failed: 1 });
    expect(aws.connections.get(good!.endpointId)?.state).toBe('pending');
    expect((await getConnection(serviceId, bad!.endpointId))?.history.map((e) => e.type)).toContain('action-failed');

    aws.overrides.unsuccessful = undefined;
    expect((await handleNotificationBatch([second])).failedMessageIds).toEqual([]);
    expect(aws.connections.get(bad!.endpointId)?.state).toBe('pending');
  });

  it('hands back only the messages of the service whose policy cannot be read', async () => {
    const broken = newServiceId();
    const ok = aws.connect(serviceId, ALLOWED);
    const stuck = aws.connect(broken, ALLOWED);
    await storeOldPolicyVersion(broken, 99, '{"mode":"sometimes"}');
    const fine = message(connectMessage(ok));
    const held = message(connectMessage(stuck));

    const outcome = await handleNotificationBatch([fine, held]);

    expect(outcome.failedMessageIds).toEqual([held.messageId]);
    expect(aws.connections.get(ok.endpointId)?.state).toBe('pending');
    expect(aws.connections.get(stuck.endpointId)?.state).toBe('pendingAcceptance');
  });

  it('considers only the first few services of a message that names thousands, and makes no call for the rest', async () => {
    const services = Array.from({ length: 3000 }, () => newServiceId());
    const outcome = await handleNotificationBatch([message(JSON.stringify({ services: services.map((id) => ({ serviceId: id })) }))]);

    expect(outcome.failedMessageIds).toEqual([]);
    expect(aws.ec2.commandCalls(DescribeVpcEndpointConnectionsCommand).length).toBeLessThanOrEqual(MAX_SERVICES_PER_MESSAGE);
  });

  it('admits no more than maxEndpointsPerAccount when twelve endpoints are decided at once, in one batch and in many', async () => {
    await putPolicy(serviceId, parsePolicy({ allow: [{ account: ALLOWED, label: 'acme-prod' }], maxEndpointsPerAccount: 5 }), { actor: 'test' });
    const together = Array.from({ length: 12 }, () => aws.connect(serviceId, ALLOWED));
    await handleNotificationBatch(together.map((c) => message(connectMessage(c))));
    const admittedTogether = together.filter((c) => aws.connections.get(c.endpointId)?.state === 'pending').length;

    const other = newServiceId();
    await putPolicy(other, parsePolicy({ allow: [{ account: ALLOWED, label: 'acme-prod' }], maxEndpointsPerAccount: 5 }), { actor: 'test' });
    const apart = Array.from({ length: 12 }, () => aws.connect(other, ALLOWED));
    await Promise.all(apart.map((c) => handleNotificationBatch([message(connectMessage(c))])));
    const admittedApart = apart.filter((c) => aws.connections.get(c.endpointId)?.state === 'pending').length;

    expect(admittedTogether).toBe(5);
    expect(admittedApart).toBe(5);
  }, 60_000);
});
