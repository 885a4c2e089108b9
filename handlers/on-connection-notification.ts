import type { SQSBatchResponse } from 'aws-lambda';
import { handleNotificationBatch, type NotificationMessage } from '../lib/notifications';
import { confirmSpokeSubscriptions } from '../lib/spoke-subscriptions';
import { sqsEventSchema, sqsMessageSchema, sqsMessageIdSchema } from '../lib/domain/lambda-events';
import { lambdaHandler } from '../lib/lambda';
import { logger } from '../lib/logger';
import { count, countDecisions, METRIC } from '../lib/metrics';
import { ValidationError } from '../lib/errors';
import * as v from '../lib/validation';
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
    const parsed = v.safeParse(sqsEventSchema, event);
    if (!parsed.success) throw new ValidationError('not an SQS event', v.problems(parsed.issues));
    const messages: NotificationMessage[] = [];
    const unreadable: string[] = [];
    for (const record of parsed.output.Records) {
      const message = v.safeParse(sqsMessageSchema, record);
      if (message.success) {
        messages.push({ messageId: message.output.messageId, body: message.output.body });
        continue;
      }
      // A record Lambda would never build: reported failed, so that it ends in the dead-letter queue.
      const named = v.safeParse(sqsMessageIdSchema, record);
      if (!named.success) throw new ValidationError('an SQS record without a messageId; the whole batch is retried', v.problems(message.issues));
      logger.error('unreadable SQS record; reported failed', { messageId: named.output.messageId, issues: v.problems(message.issues) });
      unreadable.push(named.output.messageId);
    }
    const { notifications, failedMessageIds: unconfirmed } = await confirmSpokeSubscriptions(messages);
    const { failedMessageIds, counts } = await handleNotificationBatch(notifications);
    const failed = [...unreadable, ...unconfirmed, ...failedMessageIds];
    logger.info('batch handled', { ...counts, messages: parsed.output.Records.length, failedMessages: failed.length });
    count(METRIC.notificationsHandled, parsed.output.Records.length - failed.length);
    if (failed.length) count(METRIC.notificationFailures, failed.length);
    countDecisions({ accept: counts.accepted, reject: counts.rejected });
    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  },
  { metrics: true },
);
