import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { config, deadLetterQueueUrl } from '../config';

// Here rather than in clients.ts: only the redrive reads the queue, and the other
// bundles should not carry an SQS client.
export const sqsClient = new SQSClient({ maxAttempts: config().AWS_MAX_ATTEMPTS });

/** One message taken from the dead-letter queue; invisible to others until its visibility timeout ends. */
export interface DeadLetterMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
}

/** Takes up to `max` (at most 10) messages, hiding them for `visibilitySeconds`. */
export async function receiveDeadLetters(max: number, visibilitySeconds: number, client: SQSClient = sqsClient): Promise<DeadLetterMessage[]> {
  const output = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: deadLetterQueueUrl(),
      MaxNumberOfMessages: Math.min(10, max),
      VisibilityTimeout: visibilitySeconds,
      WaitTimeSeconds: 0,
    }),
  );
  return (output.Messages ?? []).flatMap(({ MessageId, ReceiptHandle, Body }) =>
    MessageId && ReceiptHandle && Body !== undefined ? [{ messageId: MessageId, receiptHandle: ReceiptHandle, body: Body }] : [],
  );
}

/** Removes a message for good, once it has been handled. */
export async function deleteDeadLetter(receiptHandle: string, client: SQSClient = sqsClient): Promise<void> {
  await client.send(new DeleteMessageCommand({ QueueUrl: deadLetterQueueUrl(), ReceiptHandle: receiptHandle }));
}
