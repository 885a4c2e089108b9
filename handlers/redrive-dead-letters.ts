import { z } from 'zod';
import { redriveDeadLetters, type RedriveSummary } from '../lib/redrive';
import { middyfy } from '../lib/lambda';
import { logger } from '../lib/logger';
import { RedriveIncompleteError, ValidationError } from '../lib/errors';
import { config, deadLetterQueueUrl, outboundTopicArn } from '../lib/config';

// Fail at cold start, naming the variable, rather than after taking messages from the queue.
config();
outboundTopicArn();
deadLetterQueueUrl();

const redriveEventSchema = z.strictObject({
  maxMessages: z.int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000').default(100),
});

/**
 * Invoked by an operator once the cause of the failures is fixed
 * (`aws lambda invoke --function-name …-redrive-dead-letters`): handles the
 * dead-lettered notifications again and removes those that went through.
 * Throws, with the counts, when any failed again or could not be read.
 */
export const handler = middyfy(async (event: unknown): Promise<RedriveSummary> => {
  const parsed = redriveEventSchema.safeParse(event ?? {});
  if (!parsed.success) throw new ValidationError(`invalid redrive request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ')}`);
  const summary = await redriveDeadLetters(parsed.data);
  logger.info('dead-letter redrive finished', { ...summary });
  if (summary.failed || summary.unreadable) {
    throw new RedriveIncompleteError(
      `${summary.redriven} of ${summary.received} dead letters redriven; ${summary.failed} failed again and ${summary.unreadable} could not be read, and they stay in the queue`,
    );
  }
  return summary;
});
