import { confirmSubscription } from './aws/sns-subscriptions';
import { config } from './config';
import { parseSubscriptionMessage, spokeTopicArn, topicRegion } from './domain/spokes';
import { logger } from './logger';

export interface QueueMessage {
  messageId: string;
  body: string;
}

export interface SubscriptionConfirmations {
  /** The messages that are no subscription message: the notifications, for the engine. */
  notifications: QueueMessage[];
  /** Confirmations that failed (SNS throttling or down): retried through the queue. */
  failedMessageIds: string[];
  confirmed: number;
  /** Subscription messages of topics that are no spoke's, and unsubscribe confirmations: dropped. */
  ignored: number;
}

type Confirm = (topicArn: string, token: string, region: string) => Promise<unknown>;

/**
 * The step before the engine: a spoke's topic (stack/spoke.yml) subscribes the hub's queue from
 * another account, so SNS holds the subscription until the queue's owner confirms it with the
 * token it sends into the queue. Confirms those of the configured spokes' topics, in the topic's
 * Region, and only those; drops the other subscription messages; passes everything else on.
 */
export async function confirmSpokeSubscriptions(messages: readonly QueueMessage[], confirm: Confirm = confirmSubscription): Promise<SubscriptionConfirmations> {
  const { SPOKES: spokes, SPOKE_TOPIC_NAME: topicName } = config();
  const spokeTopics = new Set(topicName ? spokes.map((spoke) => spokeTopicArn(spoke, topicName)) : []);
  const result: SubscriptionConfirmations = { notifications: [], failedMessageIds: [], confirmed: 0, ignored: 0 };
  for (const message of messages) {
    const subscription = parseSubscriptionMessage(message.body);
    if (!subscription) {
      result.notifications.push(message);
      continue;
    }
    const { type, topicArn, token } = subscription;
    const region = topicRegion(topicArn);
    if (type !== 'SubscriptionConfirmation' || !spokeTopics.has(topicArn) || !region) {
      logger.warn('subscription message ignored: not a confirmation of a spoke topic', { messageId: message.messageId, type, topicArn });
      result.ignored += 1;
      continue;
    }
    try {
      await confirm(topicArn, token, region);
      logger.info('spoke subscription confirmed', { topicArn });
      result.confirmed += 1;
    } catch (error) {
      logger.error('spoke subscription not confirmed; the message comes back', { messageId: message.messageId, topicArn, error });
      result.failedMessageIds.push(message.messageId);
    }
  }
  return result;
}
