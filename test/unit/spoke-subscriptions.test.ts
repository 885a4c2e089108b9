import { ConfirmSubscriptionCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseSpoke, parseSubscriptionMessage, partitionOf, spokeTopicArn } from '../../lib/domain/spokes';
import { confirmSpokeSubscriptions } from '../../lib/spoke-subscriptions';

// The hub confirms the subscriptions of its spokes' topics to its queue, and only those.

vi.hoisted(() => {
  process.env.SPOKES = '222233334444:eu-west-1, 555566667777:ap-southeast-2';
  process.env.SPOKE_TOPIC_NAME = 'vpce-gatekeeper-test-spoke-notifications';
});

const SPOKE_TOPIC = 'arn:aws:sns:eu-west-1:222233334444:vpce-gatekeeper-test-spoke-notifications';
const sns = mockClient(SNSClient);

afterEach(() => sns.reset());

function confirmation(topicArn: string, type = 'SubscriptionConfirmation'): string {
  return JSON.stringify({
    Type: type,
    MessageId: 'b6b7c5a2-0000-4000-8000-000000000000',
    Token: `token-of-${topicArn}`,
    TopicArn: topicArn,
    Message: `You have chosen to subscribe to the topic ${topicArn}.`,
    SubscribeURL: `https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${topicArn}&Token=t`,
    Timestamp: '2026-01-01T00:00:00.000Z',
    SignatureVersion: '1',
    Signature: 'c2lnbmF0dXJl',
    SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem',
  });
}

describe("confirming the spokes' subscriptions", () => {
  it("confirms a spoke topic's subscription with SNS in the topic's Region, and passes the notifications on as they came", async () => {
    sns.on(ConfirmSubscriptionCommand).resolves({ SubscriptionArn: `${SPOKE_TOPIC}:f0e1` });
    const notification = { messageId: 'n1', body: '{"eventType":"Connect","serviceId":"vpce-svc-0123456789abcdef0"}' };

    const result = await confirmSpokeSubscriptions([{ messageId: 'c1', body: confirmation(SPOKE_TOPIC) }, notification]);

    expect(result).toEqual({ notifications: [notification], failedMessageIds: [], confirmed: 1, ignored: 0 });
    expect(sns).toHaveReceivedCommandWith(ConfirmSubscriptionCommand, { TopicArn: SPOKE_TOPIC, Token: `token-of-${SPOKE_TOPIC}` });
    expect(await sns.call(0).thisValue.config.region()).toBe('eu-west-1');
  });

  it('confirms no topic that is not a configured spoke\'s, and drops unsubscribe confirmations', async () => {
    const strangers = [
      'arn:aws:sns:eu-west-1:999988887777:vpce-gatekeeper-test-spoke-notifications', // not a spoke account
      'arn:aws:sns:us-west-2:222233334444:vpce-gatekeeper-test-spoke-notifications', // a spoke account, not that Region
      'arn:aws:sns:eu-west-1:222233334444:someone-elses-topic',
    ];

    const result = await confirmSpokeSubscriptions([
      ...strangers.map((topicArn, i) => ({ messageId: `s${i}`, body: confirmation(topicArn) })),
      { messageId: 'u1', body: confirmation(SPOKE_TOPIC, 'UnsubscribeConfirmation') },
    ]);

    expect(result).toEqual({ notifications: [], failedMessageIds: [], confirmed: 0, ignored: 4 });
    expect(sns.calls()).toHaveLength(0);
  });

  it('hands a confirmation SNS failed back to the queue, to be retried', async () => {
    sns.on(ConfirmSubscriptionCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttled' }));

    const result = await confirmSpokeSubscriptions([{ messageId: 'c1', body: confirmation(SPOKE_TOPIC) }]);

    expect(result).toMatchObject({ failedMessageIds: ['c1'], confirmed: 0 });
  });
});

describe('spokes', () => {
  it('reads account:region, and nothing else', () => {
    expect(parseSpoke('222233334444:eu-west-1')).toEqual({ accountId: '222233334444', region: 'eu-west-1' });
    for (const bad of ['222233334444', '22223333444:eu-west-1', '222233334444:eu-west', '222233334444:eu-west-1:x', 'eu-west-1:222233334444']) {
      expect(parseSpoke(bad)).toBeUndefined();
    }
  });

  it("names a spoke's topic in its partition", () => {
    expect(spokeTopicArn({ accountId: '222233334444', region: 'cn-north-1' }, 't')).toBe('arn:aws-cn:sns:cn-north-1:222233334444:t');
    expect(partitionOf('us-gov-west-1')).toBe('aws-us-gov');
    expect(partitionOf('ap-southeast-2')).toBe('aws');
  });

  it('reads a subscription message from any string without throwing, and only a well-formed one as such', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (body) => {
        const parsed = parseSubscriptionMessage(body);
        if (parsed) expect(['SubscriptionConfirmation', 'UnsubscribeConfirmation']).toContain(parsed.type);
      }),
    );
    expect(parseSubscriptionMessage(confirmation(SPOKE_TOPIC))).toEqual({ type: 'SubscriptionConfirmation', topicArn: SPOKE_TOPIC, token: `token-of-${SPOKE_TOPIC}` });
    expect(parseSubscriptionMessage('{"Type":"Notification","TopicArn":"a","Token":"b"}')).toBeUndefined();
    expect(parseSubscriptionMessage('{"Type":"SubscriptionConfirmation","TopicArn":"a"}')).toBeUndefined();
  });
});
