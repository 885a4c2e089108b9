import { handleNotification } from '../lib/notifications';
import { snsEventSchema } from '../lib/domain/lambda-events';
import { middyfy } from '../lib/lambda';
import { logger } from '../lib/logger';
import { count, countDecisions, METRIC } from '../lib/metrics';
import { ValidationError } from '../lib/errors';
import { config, outboundTopicArn } from '../lib/config';

// Fail at cold start, naming the variable, rather than halfway through a decision.
config();
outboundTopicArn();

/**
 * Subscribed to the inbound topic that vpce.amazonaws.com publishes endpoint
 * connection notifications to. Throws when any record could not be fully
 * handled, so that Lambda retries the event and, at last, sends it to the DLQ.
 */
export const handler = middyfy(
  async (event: unknown): Promise<void> => {
    const parsed = snsEventSchema.safeParse(event);
    if (!parsed.success) throw new ValidationError('not an SNS event', parsed.error.issues);
    const failures: unknown[] = [];
    for (const { Sns } of parsed.data.Records) {
      logger.appendKeys({ messageId: Sns.MessageId });
      try {
        const outcome = await handleNotification(Sns.Message);
        logger.info('notification handled', { ...outcome });
        count(METRIC.notificationsHandled, 1);
        countDecisions({ accept: outcome.accepted, reject: outcome.rejected });
      } catch (error) {
        logger.error('notification failed; it will be retried', { error });
        count(METRIC.notificationFailures, 1);
        failures.push(error);
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} notifications failed`);
  },
  { metrics: true },
);
