import type { ConnectionRecord } from './connection';
import type { OutboundEvent } from './outbound-event';

/** The outbox events that `record` holds and `before` did not: those a write added. */
export function eventsAddedBy(record: ConnectionRecord, before: ConnectionRecord | undefined): OutboundEvent[] {
  const existing = new Set((before?.outbox ?? []).map((event) => event.eventId));
  return (record.outbox ?? []).filter((event) => !existing.has(event.eventId));
}

/**
 * The outbox events a writer publishes after writing `record` over `before`:
 * those its write added, and those left behind for longer than a lease, whose
 * writer must have died before publishing them (a live writer publishes within
 * its lease, so an event younger than that is still its business).
 */
export function eventsToPublish(
  record: ConnectionRecord,
  before: ConnectionRecord | undefined,
  now: Date,
  leaseSeconds: number,
): OutboundEvent[] {
  const added = new Set(eventsAddedBy(record, before).map((event) => event.eventId));
  const abandonedBefore = now.getTime() - leaseSeconds * 1000;
  return (record.outbox ?? []).filter((event) => added.has(event.eventId) || Date.parse(event.occurredAt) < abandonedBefore);
}

/** The record without some outbox events (no new version: the caller decides whether this is a write of its own). */
export function withoutEvents(record: ConnectionRecord, eventIds: ReadonlySet<string>): ConnectionRecord {
  const outbox = (record.outbox ?? []).filter((event) => !eventIds.has(event.eventId));
  return { ...record, outbox: outbox.length ? outbox : undefined };
}
