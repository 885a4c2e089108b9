import type { ConnectionRecord } from '../domain/connection';
import { eventsAddedBy, eventsToPublish, withoutEvents } from '../domain/outbox';
import { withoutPublished } from '../domain/record-changes';
import { logger } from '../logger';
import type { EnginePorts } from './ports';
import { writeVersioned } from './versioned-write';

/** Lost races tolerated while taking published events out of a record. */
const OUTBOX_WRITE_ATTEMPTS = 5;

/** A connection's record as a versioned item, for writeVersioned. */
export function connectionItem(ports: Pick<EnginePorts, 'records'>, id: { serviceId: string; endpointId: string }) {
  return {
    read: () => ports.records.get(id.serviceId, id.endpointId),
    write: (next: ConnectionRecord, expected: ConnectionRecord | undefined) => ports.records.put(next, expected?.version),
  };
}

/**
 * Publishes the outbox events that the write from `before` to `record` added,
 * and any that a writer that died left behind for longer than a lease, then
 * removes them from the record. A crash in between publishes again later:
 * subscribers may see an event twice (same eventId), never not at all. SNS
 * failing is not the decision failing: the events wait in the outbox.
 */
export async function publishOutbox(record: ConnectionRecord, before: ConnectionRecord | undefined, ports: EnginePorts): Promise<void> {
  const events = eventsToPublish(record, before, ports.clock.now(), ports.settings.leaseSeconds);
  if (!events.length) return;
  const published = new Set<string>();
  try {
    for (const event of events) {
      await ports.publisher.publish(event);
      published.add(event.eventId);
    }
  } catch (error) {
    // The decision stands: what was not published stays in the outbox, and whoever writes the record
    // next once it is older than a lease (the reconciler, at the latest) publishes it.
    logger.warn('could not publish a connection event; it stays in the outbox', { endpointId: record.endpointId, error });
  }
  if (!published.size) return;
  await writeVersioned(
    connectionItem(ports, record),
    record,
    (latest) =>
      latest?.outbox?.some((event) => published.has(event.eventId))
        ? { write: withoutPublished(latest, published, ports.clock.now()), then: undefined }
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
export async function publishAhead(record: ConnectionRecord, before: ConnectionRecord, ports: EnginePorts): Promise<ConnectionRecord> {
  const published = new Set<string>();
  try {
    for (const event of eventsAddedBy(record, before)) {
      await ports.publisher.publish(event);
      published.add(event.eventId);
    }
  } catch (error) {
    logger.warn('could not publish ahead of the write; the event stays in the outbox', { endpointId: record.endpointId, error });
  }
  return withoutEvents(record, published);
}
