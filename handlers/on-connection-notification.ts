import { z } from 'zod';
import { handleNotification } from '../lib/gatekeeper';
import { middyfy } from '../lib/lambda';
import { logger } from '../lib/logger';
import { ValidationError } from '../lib/errors';
import { config, outboundTopicArn } from '../lib/config';

// Fail at cold start, naming the variable, rather than halfway through a decision.
config();
outboundTopicArn();

// Only what this handler reads; Lambda's SNS event carries more.
const snsEventSchema = z.object({
  Records: z
    .array(
      z.object({
        EventSource: z.literal('aws:sns'),
        Sns: z.object({ MessageId: z.string(), TopicArn: z.string(), Message: z.string() }),
      }),
    )
    .min(1),
});

/**
 * Subscribed to the inbound topic that vpce.amazonaws.com publishes endpoint
 * connection notifications to. Throws when any record could not be fully
 * handled, so that Lambda retries the event and, at last, sends it to the DLQ.
 */
export const handler = middyfy(async (event: unknown): Promise<void> => {
  const parsed = snsEventSchema.safeParse(event);
  if (!parsed.success) throw new ValidationError('not an SNS event', parsed.error.issues);
  const failures: unknown[] = [];
  for (const { Sns } of parsed.data.Records) {
    logger.appendKeys({ messageId: Sns.MessageId });
    try {
      const outcome = await handleNotification(Sns.Message);
      logger.info('notification handled', { ...outcome });
    } catch (error) {
      logger.error('notification failed; it will be retried', { error });
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `${failures.length} notifications failed`);
});
