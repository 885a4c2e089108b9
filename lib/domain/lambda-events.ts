import * as z from '../zod';

/**
 * An SQS event as Lambda's event source mapping delivers it. Each record is read
 * on its own (sqsMessageSchema), so that one record that cannot be read fails
 * alone, not its whole batch.
 */
export const sqsEventSchema = z.object({
  Records: z.array(z.unknown()).check(z.minLength(1)),
});

/** One SQS record; only what the function reads (Lambda's carries more). */
export const sqsMessageSchema = z.object({
  eventSource: z.literal('aws:sqs'),
  messageId: z.string().check(z.minLength(1)),
  body: z.string(),
});

/** What a batch item failure needs of a record: its messageId. */
export const sqsMessageIdSchema = z.object({ messageId: z.string().check(z.minLength(1)) });

