import type { ConnectionRecord } from './domain/connection';
import { withoutPublished } from './domain/decisions';
import { eventsAddedBy, eventsToPublish, withoutEvents } from './domain/outbox';
import { publishEvent } from './aws/event-publisher';
import { updateConnection } from './conditional-update';
import { config } from './config';
import { logger } from './logger';

/** Lost races tolerated while taking published events out of a record. */
const OUTBOX_WRITE_ATTEMPTS = 5;

/**
 * Publishes the outbox events that the write from `before` to `record` added,
 * and any that a writer that died left behind for longer than a lease, then
 * removes them from the record. A crash in between publishes again later:
 * subscribers may see an event twice (same eventId), never not at all.
 */
export async function flushOutbox(record: ConnectionRecord, before: ConnectionRecord | undefined): Promise<void> {
  const events = eventsToPublish(record, before, new Date(), config().DECISION_LEASE_SECONDS);
  if (!events.length) return;
  for (const event of events) await publishEvent(event);
  const published = new Set(events.map((event) => event.eventId));
  await updateConnection(
    record,
    record,
    (latest) =>
      latest?.outbox?.some((event) => published.has(event.eventId))
        ? { write: withoutPublished(latest, published, new Date()), then: undefined }
        : { stop: undefined },
    { attempts: OUTBOX_WRITE_ATTEMPTS, whenExhausted: 'throw' },
  );
}

/**
 * The record to write, without the events it adds to `before`, once they are
 * published ahead of the write: they then never need a second write to leave
 * the outbox. Safe only for events whose id is fixed before the write (a claim's
 * outcomeEventId), which a crash before the write publishes again under the same
 * id. An event that fails to publish stays in the outbox.
 */
export async function publishedAhead(record: ConnectionRecord, before: ConnectionRecord): Promise<ConnectionRecord> {
  const published = new Set<string>();
  try {
    for (const event of eventsAddedBy(record, before)) {
      await publishEvent(event);
      published.add(event.eventId);
    }
  } catch (error) {
    logger.warn('could not publish ahead of the write; the event stays in the outbox', { endpointId: record.endpointId, error });
  }
  return withoutEvents(record, published);
}
