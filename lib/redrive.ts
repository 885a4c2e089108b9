import { onFailureRecordSchema } from './domain/lambda-events';
import { deleteDeadLetter, receiveDeadLetters, type DeadLetterMessage } from './aws/dead-letter-queue';
import { handleNotification } from './notifications';
import { logger } from './logger';

/**
 * How long a message taken from the queue stays hidden: long enough to handle
 * it, and it keeps one that fails again from being taken twice in one redrive.
 */
const VISIBILITY_SECONDS = 300;

export interface RedriveSummary {
  /** Messages taken from the queue. */
  received: number;
  /** Handled to the end and deleted from the queue. */
  redriven: number;
  /** Failed again; they stay in the queue. */
  failed: number;
  /** Not a failed notification invocation; left in the queue for a human. */
  unreadable: number;
}

/**
 * Handles the notifications that failed every attempt again, as the notification
 * function would (handling is idempotent), deleting each from the dead-letter
 * queue once it went through. Stops after `maxMessages` or an empty receive.
 */
export async function redriveDeadLetters(options: { maxMessages: number }): Promise<RedriveSummary> {
  const summary: RedriveSummary = { received: 0, redriven: 0, failed: 0, unreadable: 0 };
  while (summary.received < options.maxMessages) {
    const batch = await receiveDeadLetters(options.maxMessages - summary.received, VISIBILITY_SECONDS);
    if (!batch.length) break;
    for (const message of batch) {
      summary.received++;
      summary[await redriveOne(message)]++;
    }
  }
  return summary;
}

async function redriveOne(message: DeadLetterMessage): Promise<'redriven' | 'failed' | 'unreadable'> {
  const record = parseRecord(message.body);
  if (!record) {
    logger.error('dead letter is not a failed notification invocation; left in the queue', { messageId: message.messageId });
    return 'unreadable';
  }
  try {
    for (const { Sns } of record.requestPayload.Records) {
      const outcome = await handleNotification(Sns.Message);
      logger.info('dead letter redriven', { messageId: message.messageId, snsMessageId: Sns.MessageId, ...outcome });
    }
  } catch (error) {
    logger.error('dead letter failed again; it stays in the queue', { messageId: message.messageId, error });
    return 'failed';
  }
  await deleteDeadLetter(message.receiptHandle);
  return 'redriven';
}

function parseRecord(body: string) {
  try {
    const parsed = onFailureRecordSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
