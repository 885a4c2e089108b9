import type { SQSBatchResponse } from 'aws-lambda';
import { handleNotificationBatch, type NotificationMessage } from '../lib/notifications';
import { confirmSpokeSubscriptions } from '../lib/spoke-subscriptions';
import { sqsEventSchema, sqsMessageSchema, sqsMessageIdSchema } from '../lib/domain/lambda-events';
import { lambdaHandler } from '../lib/lambda';
import { logger } from '../lib/logger';
import { count, countDecisions, METRIC } from '../lib/metrics';
import { ValidationError } from '../lib/errors';
import { config, outboundTopicArn } from '../lib/config';

// Fail at cold start, naming the variable, rather than halfway through a decision.
config();
outboundTopicArn();

/**
 * Consumes the notifications queue (event source mapping with
 * ReportBatchItemFailures): decides the batch as one, and names the messages
 * that could not be decided, so that only those come back to the queue (and,
 * after maxReceiveCount receives, go to the dead-letter queue).
 */
export const handler = lambdaHandler(
  async (event: unknown): Promise<SQSBatchResponse> => {
    const parsed = sqsEventSchema.safeParse(event);
    if (!parsed.success) throw new ValidationError('not an SQS event', parsed.error.issues);
    const messages: NotificationMessage[] = [];
    const unreadable: string[] = [];
    for (const record of parsed.data.Records) {
      const message = sqsMessageSchema.safeParse(record);
      if (message.success) {
        messages.push({ messageId: message.data.messageId, body: message.data.body });
        continue;
      }
      // A record Lambda would never build: reported failed, so that it ends in the dead-letter queue.
      const named = sqsMessageIdSchema.safeParse(record);
      if (!named.success) throw new ValidationError('an SQS record without a messageId; the whole batch is retried', message.error.issues);
      logger.error('unreadable SQS record; reported failed', { messageId: named.data.messageId, issues: message.error.issues });
      unreadable.push(named.data.messageId);
    }
    const { notifications, failedMessageIds: unconfirmed } = await confirmSpokeSubscriptions(messages);
    const { failedMessageIds, counts } = await handleNotificationBatch(notifications);
    const failed = [...unreadable, ...unconfirmed, ...failedMessageIds];
    logger.info('batch handled', { ...counts, messages: parsed.data.Records.length, failedMessages: failed.length });
    count(METRIC.notificationsHandled, parsed.data.Records.length - failed.length);
    if (failed.length) count(METRIC.notificationFailures, failed.length);
    countDecisions({ accept: counts.accepted, reject: counts.rejected });
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  },
  { metrics: true },
);
