import type { ConnectionCard } from './message-card';

/**
 * Keeping one Slack message per connection in step with its events, pure.
 *
 * Events arrive at least once and in any order, and several functions may hold
 * one at the same time. The table's item for the message keeps the newest card
 * known (by its sequence) and what Slack shows. Storing a newer card needs no
 * lease; talking to Slack about the message does: whoever holds the lease posts
 * or updates, and before letting go looks again, so the newest card stored
 * while it talked is shown too. A lease outlives the function's timeout, so it
 * is never taken from a holder still running; one whose holder died expires.
 */

/** How long a lease on a message lasts: longer than the Slack functions' 30 s timeout. */
export const MESSAGE_LEASE_SECONDS = 60;

/** The table's item for one connection's Slack message. */
export interface SlackMessageItem {
  serviceId: string;
  endpointId: string;
  /** The channel it is (to be) posted in; Slack's id once posted. */
  channel: string;
  /** Slack's id of the message, once posted. */
  ts?: string;
  /** The newest card known. */
  card: ConnectionCard;
  /** The sequence of the card Slack shows (0: not posted yet). */
  shownSequence: number;
  /** Who is talking to Slack about this message, until when. */
  lease?: { token: string; until: string };
  /** The sequence of the last reminder answered in the message's thread. */
  remindedSequence?: number;
  version: number;
}

export type StoreStep = { kind: 'write'; item: SlackMessageItem } | { kind: 'ignore'; why: string };

/**
 * Stores a card: an announcement (a held request) starts a message, showing
 * `card` (the request, or what became of it meanwhile); a later card replaces
 * an earlier one; a decision about a connection no message announced, or a
 * card older than the one stored, changes nothing.
 */
export function storeCard(item: SlackMessageItem | undefined, card: ConnectionCard, channel: string, announcement: boolean): StoreStep {
  if (!item) {
    if (!announcement) return { kind: 'ignore', why: 'no message announces this connection' };
    return { kind: 'write', item: { serviceId: card.serviceId, endpointId: card.endpointId, channel, card, shownSequence: 0, version: 1 } };
  }
  if (card.sequence <= item.card.sequence) return { kind: 'ignore', why: `a newer event (sequence ${item.card.sequence}) is already stored` };
  return { kind: 'write', item: { ...item, card, version: item.version + 1 } };
}

export type SyncStep =
  | { kind: 'done' }
  /** Someone else holds the lease; they show the newest card before they let go. */
  | { kind: 'wait'; until: string }
  /** Take the lease (write `item`), then post or update the message with `item.card`. */
  | { kind: 'take'; item: SlackMessageItem; then: 'post' | 'update' };

/** What to do next to bring Slack in line with the newest card. */
export function nextSyncStep(item: SlackMessageItem, now: Date, token: string): SyncStep {
  if (item.lease && item.lease.token !== token && Date.parse(item.lease.until) > now.getTime()) return { kind: 'wait', until: item.lease.until };
  if (item.ts && item.shownSequence >= item.card.sequence) return { kind: 'done' };
  const until = new Date(now.getTime() + MESSAGE_LEASE_SECONDS * 1000).toISOString();
  return { kind: 'take', item: { ...item, lease: { token, until }, version: item.version + 1 }, then: item.ts ? 'update' : 'post' };
}

/**
 * The item after its lease holder showed `shown` in Slack: the message's id and
 * channel, what it shows, and the lease let go. Undefined when the lease is no
 * longer the holder's (it expired and was taken over): the holder then writes nothing.
 */
export function afterShown(
  item: SlackMessageItem,
  token: string,
  shown: { channel: string; ts: string; sequence: number },
): SlackMessageItem | undefined {
  if (item.lease?.token !== token) return undefined;
  const { lease: _released, ...rest } = item;
  return {
    ...rest,
    channel: shown.channel,
    ts: shown.ts,
    shownSequence: Math.max(item.shownSequence, shown.sequence),
    version: item.version + 1,
  };
}

/** The item with its holder's lease let go and nothing else changed (Slack could not be told). */
export function released(item: SlackMessageItem, token: string): SlackMessageItem | undefined {
  if (item.lease?.token !== token) return undefined;
  const { lease: _released, ...rest } = item;
  return { ...rest, version: item.version + 1 };
}

/** The newer of two cards of one connection; on a tie, the first. */
export function newerCard(first: ConnectionCard, second: ConnectionCard | undefined): ConnectionCard {
  return second && second.sequence > first.sequence && second.status !== first.status ? second : first;
}

export type ReminderStep = { kind: 'reply'; item: SlackMessageItem } | { kind: 'ignore'; why: string };

/**
 * A reminder is answered once in the thread of a message that still asks for a
 * decision; a copy, an older reminder, or one about a request decided since is not.
 */
export function reminderStep(item: SlackMessageItem, sequence: number): ReminderStep {
  if (!item.ts) return { kind: 'ignore', why: 'the message is not posted yet' };
  if (item.card.status !== 'held') return { kind: 'ignore', why: `the request is ${item.card.status}` };
  if ((item.remindedSequence ?? 0) >= sequence) return { kind: 'ignore', why: 'this reminder was answered already' };
  return { kind: 'reply', item: { ...item, remindedSequence: sequence, version: item.version + 1 } };
}
