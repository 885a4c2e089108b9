import * as v from '../validation';

/**
 * An SQS event as Lambda's event source mapping delivers it. Each record is read
 * on its own (sqsMessageSchema), so that one record that cannot be read fails
 * alone, not its whole batch.
 */
export const sqsEventSchema = v.object({
  Records: v.pipe(v.array(v.unknown()), v.minLength(1)),
});

/** One SQS record; only what the function reads (Lambda's carries more). */
export const sqsMessageSchema = v.object({
  eventSource: v.literal('aws:sqs'),
  messageId: v.pipe(v.string(), v.minLength(1)),
  body: v.string(),
});

/** What a batch item failure needs of a record: its messageId. */
export const sqsMessageIdSchema = v.object({ messageId: v.pipe(v.string(), v.minLength(1)) });
