import { askOf, failedMessageIds, intentsOf, MAX_SERVICES_PER_MESSAGE, type MessageAsk } from './domain/notification-batch';
import type { ScopedFailure } from './domain/snapshot';
import { awsPorts } from './aws/ports';
import { noCounts, type Counts } from './engine/apply';
import { runEngine } from './engine/engine';
import type { EnginePorts } from './engine/ports';
import type { ConflictPolicy } from './engine/versioned-write';
import { describeError } from './errors';
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
  counts: Counts;
  /** Why: what could not be decided, for the logs. */
  failures: ScopedFailure[];
}

/** How much of an unrecognised message is logged. */
export const LOGGED_MESSAGE_CHARS = 1000;

/**
 * A notification that loses a race for a record tries again from a fresh read
 * a few times; after that its message goes back to the queue.
 */
const NOTIFICATION_CONFLICTS: ConflictPolicy = { attempts: 5, whenExhausted: 'throw' };

/**
 * Decides a batch of endpoint connection notifications as one: each message
 * becomes intents (copies are one intent), the engine reads one snapshot for
 * all of them (records in one BatchGet per 100, EC2 with one Describe per 200
 * endpoints of a service) and acts with one call per 100. Never throws: the
 * messages whose connections could not be decided are named in
 * failedMessageIds, and the rest of the batch is done.
 */
export async function handleNotificationBatch(messages: readonly NotificationMessage[], ports: EnginePorts = awsPorts()): Promise<BatchOutcome> {
  const asks = messages.map(({ messageId, body }) => {
    const ask = askOf(messageId, body);
    logAsk(ask, body);
    return ask;
  });
  const failures: ScopedFailure[] = [];
  let managed: string[] = [];
  if (asks.some((ask) => ask.everything)) {
    try {
      managed = await ports.services.ids();
    } catch (error) {
      logger.error('could not list the managed services', { error });
      failures.push({ serviceId: '*', ...describeError(error) });
    }
  }
  const run = await runEngine(intentsOf(asks, managed), ports, { conflicts: NOTIFICATION_CONFLICTS });
  failures.push(...run.failures, ...run.services.flatMap((service) => service.failures));
  const counts = noCounts();
  for (const service of run.services) for (const key of Object.keys(counts) as (keyof Counts)[]) counts[key] += service.counts[key];
  return { failedMessageIds: failedMessageIds(asks, failures), counts, failures };
}

function logAsk(ask: MessageAsk, body: string): void {
  if (ask.servicesNamed) {
    logger.warn('notification names too many endpoint services; only the first are considered', {
      messageId: ask.messageId,
      named: ask.servicesNamed,
      considered: MAX_SERVICES_PER_MESSAGE,
    });
  }
  if (ask.everything) {
    logger.warn('notification names no endpoint or service; sweeping every managed service', {
      messageId: ask.messageId,
      rawMessage: body.length > LOGGED_MESSAGE_CHARS ? `${body.slice(0, LOGGED_MESSAGE_CHARS)}… (${body.length} characters)` : body,
    });
  }
}
