import * as z from 'zod/mini';

/** An SNS event as Lambda delivers it; only what the functions read (Lambda's carries more). */
export const snsEventSchema = z.object({
  Records: z
    .array(
      z.object({
        EventSource: z.literal('aws:sns'),
        Sns: z.object({ MessageId: z.string(), TopicArn: z.string(), Message: z.string() }),
      }),
    )
    .check(z.minLength(1)),
});

export type SnsEvent = z.infer<typeof snsEventSchema>;

/**
 * What Lambda sends to an asynchronous invocation's on-failure destination (the
 * dead-letter queue): the original event as `requestPayload`, and why the last
 * attempt failed.
 */
export const onFailureRecordSchema = z.object({
  requestContext: z.looseObject({ requestId: z.string(), approximateInvokeCount: z.optional(z.number()) }),
  requestPayload: snsEventSchema,
  responsePayload: z.optional(z.unknown()),
});

export type OnFailureRecord = z.infer<typeof onFailureRecordSchema>;
