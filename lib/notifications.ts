import { handleNotification, type Outcome } from './gatekeeper';
import { logger } from './logger';

/** One message taken from the notifications queue. */
export interface NotificationMessage {
  /** The queue's id for the message: what a batch item failure names. */
  messageId: string;
  /** The PrivateLink notification text (the SNS Message). */
  body: string;
}

/** What one batch came to: the messages to hand back to the queue, and what was decided. */
export interface BatchOutcome {
  /** Messages whose connections could not be decided; they go back to the queue. */
  failedMessageIds: string[];
  counts: Outcome;
}

/**
 * Decides a batch of endpoint connection notifications. Never throws for a
 * message: a message that could not be decided is named in failedMessageIds.
 */
export async function handleNotificationBatch(messages: NotificationMessage[]): Promise<BatchOutcome> {
  const counts: Outcome = { observed: 0, accepted: 0, rejected: 0, failed: 0, firstSeen: 0, stateChanged: 0, recovered: 0 };
  const failedMessageIds: string[] = [];
  for (const message of messages) {
    try {
      const outcome = await handleNotification(message.body);
      for (const key of Object.keys(counts) as (keyof Outcome)[]) counts[key] += outcome[key];
    } catch (error) {
      logger.error('notification failed; it goes back to the queue', { messageId: message.messageId, error });
      failedMessageIds.push(message.messageId);
    }
  }
  return { failedMessageIds, counts };
}
