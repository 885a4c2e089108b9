import { randomUUID } from 'node:crypto';
import type { ConnectionRecord } from '../domain/connection';
import { getConnection } from '../aws/connection-store';
import { getSlackMessage, putSlackMessage } from '../aws/slack-store';
import { ConflictError } from '../errors';
import { logger } from '../logger';
import { cardOf, cardOfRecord, messageOf, reminderText, type CardEvent, type ConnectionCard } from './message-card';
import { afterShown, newerCard, nextSyncStep, released, reminderStep, storeCard, type SlackMessageItem } from './message-sync';
import { SlackApiError, type SlackWebApi } from './web-api';

/** Writes of the message's item that lost to another writer, tried again from a fresh read. */
const MAX_WRITE_ATTEMPTS = 5;
/** Rounds of post-or-update: each shows the newest card; another round runs only if a newer one came meanwhile. */
const MAX_SYNC_ROUNDS = 5;

export interface MessageDeps {
  slack: SlackWebApi;
  /** Where new messages are posted. */
  channel: string;
  /** How long one Slack call may take, its retries after Retry-After included. */
  slackBudgetMs: number;
  getItem?: typeof getSlackMessage;
  putItem?: typeof putSlackMessage;
  getRecord?: (serviceId: string, endpointId: string) => Promise<ConnectionRecord | undefined>;
  now?: () => Date;
}

export type ShowOutcome =
  | { outcome: 'ignored'; why: string }
  | { outcome: 'shown'; ts: string; channel: string }
  /** Another invocation holds the message and shows the newest card before it lets go. */
  | { outcome: 'left-to-holder' };

/**
 * Shows an outbound event in Slack: an approval-needed request is posted to the
 * channel, and every later event about it (accepted, rejected, revoked, a
 * failed action) updates that message, whoever decided and wherever. Events
 * come at least once and in any order: an older or repeated one changes nothing.
 */
export async function showEvent(event: CardEvent, deps: MessageDeps): Promise<ShowOutcome> {
  if (event.eventType === 'approval-reminder') return remind(event, deps);
  const card = cardOf(event);
  if (!card) return { outcome: 'ignored', why: `a message does not show ${event.eventType} events` };
  return showCard(card, deps);
}

/**
 * A request still waiting after its policy's pendingTimeout: a reply in its
 * message's thread, once per reminder. A request held before Slack was set up
 * has no message yet: the reminder announces it.
 */
async function remind(event: CardEvent, deps: MessageDeps): Promise<ShowOutcome> {
  const { getItem = getSlackMessage, putItem = putSlackMessage } = deps;
  const card = cardOf({ ...event, eventType: 'approval-needed' });
  if (!card) return { outcome: 'ignored', why: 'not a connection event' };
  let item = await getItem(event.serviceId, event.endpointId);
  if (!item?.ts) {
    const shown = await showCard(card, deps);
    if (shown.outcome !== 'shown') return shown;
    item = await getItem(event.serviceId, event.endpointId);
    if (!item) return { outcome: 'ignored', why: 'the message was forgotten' };
  }
  for (let attempt = 1; ; attempt++) {
    const step = reminderStep(item, event.sequence);
    if (step.kind === 'ignore') return { outcome: 'ignored', why: step.why };
    try {
      // Answered first, then said: a copy handled at the same time finds it answered.
      await putItem(step.item, item.version);
      break;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
      item = await getItem(event.serviceId, event.endpointId);
      if (!item) return { outcome: 'ignored', why: 'the message was forgotten' };
    }
  }
  const { channel, ts = '' } = item;
  try {
    await deps.slack.call('chat.postMessage', { channel, thread_ts: ts, text: reminderText(item.card) }, { budgetMs: deps.slackBudgetMs });
  } catch (error) {
    await forgetReminder(event, deps);
    throw error;
  }
  return { outcome: 'shown', ts, channel };
}

/** Takes back a reminder Slack was not told of, so that the retry answers it. */
async function forgetReminder(event: CardEvent, deps: MessageDeps): Promise<void> {
  const { getItem = getSlackMessage, putItem = putSlackMessage } = deps;
  try {
    const current = await getItem(event.serviceId, event.endpointId);
    if (current?.remindedSequence === event.sequence) {
      const { remindedSequence: _taken, ...rest } = current;
      await putItem({ ...rest, version: current.version + 1 }, current.version);
    }
  } catch (error) {
    logger.warn('could not take back a reminder Slack was not told of', { endpointId: event.endpointId, error });
  }
}

/** Stores a card about a connection and brings its Slack message in line with the newest card. */
export async function showCard(card: ConnectionCard, deps: MessageDeps): Promise<ShowOutcome> {
  const stored = await store(card, deps, { readRecord: true });
  if (stored.kind === 'ignored') return { outcome: 'ignored', why: stored.why };
  return syncMessage(card, deps);
}

/**
 * Stores a card in the message's item. A request about to be announced may have
 * been decided already, its decision's event come first and found no message to
 * update: with `readRecord`, the record says what is true now.
 */
async function store(card: ConnectionCard, deps: MessageDeps, { readRecord }: { readRecord: boolean }): Promise<{ kind: 'stored' } | { kind: 'ignored'; why: string }> {
  const { getItem = getSlackMessage, putItem = putSlackMessage, getRecord = getConnection } = deps;
  for (let attempt = 1; ; attempt++) {
    const item = await getItem(card.serviceId, card.endpointId);
    const newest = item || card.status !== 'held' || !readRecord ? card : newerCard(card, recordCard(await getRecord(card.serviceId, card.endpointId)));
    const step = storeCard(item, newest, deps.channel, card.status === 'held');
    // An older card than the one stored still goes on to bring Slack in line: the holder of the newer one may have died.
    if (step.kind === 'ignore') return item ? { kind: 'stored' } : { kind: 'ignored', why: step.why };
    try {
      await putItem(step.item, item?.version);
      return { kind: 'stored' };
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
    }
  }
}

function recordCard(record: ConnectionRecord | undefined): ConnectionCard | undefined {
  return record && cardOfRecord(record);
}

/**
 * Posts or updates the message until it shows the newest card stored, holding
 * the item's lease while talking to Slack. A Slack failure lets the lease go
 * and is thrown, so that the event is retried.
 */
async function syncMessage(card: Pick<ConnectionCard, 'serviceId' | 'endpointId'>, deps: MessageDeps): Promise<ShowOutcome> {
  const { getItem = getSlackMessage, putItem = putSlackMessage, now = () => new Date() } = deps;
  const token = randomUUID();
  for (let round = 0; round < MAX_SYNC_ROUNDS; round++) {
    const item = await getItem(card.serviceId, card.endpointId);
    if (!item) return { outcome: 'ignored', why: 'the message was forgotten' };
    const step = nextSyncStep(item, now(), token);
    if (step.kind === 'done') return { outcome: 'shown', ts: item.ts ?? '', channel: item.channel };
    if (step.kind === 'wait') return { outcome: 'left-to-holder' };
    try {
      await putItem(step.item, item.version);
    } catch (error) {
      if (error instanceof ConflictError) continue; // a newer card, or another holder: look again
      throw error;
    }
    let shown: { channel: string; ts: string };
    try {
      shown = await tellSlack(step.item, step.then, deps);
    } catch (error) {
      await letGo(step.item, token, deps);
      throw error;
    }
    await recordShown(step.item, token, { ...shown, sequence: step.item.card.sequence }, deps);
    if (step.then === 'post' && step.item.card.status === 'held') {
      // Decided while it was being announced? Its decision's event may have found no message yet.
      const now = recordCard(await (deps.getRecord ?? getConnection)(card.serviceId, card.endpointId));
      if (now && newerCard(step.item.card, now) === now) await store(now, deps, { readRecord: false });
    }
  }
  // Newer cards kept coming: the holder of the last one shows it.
  return { outcome: 'left-to-holder' };
}

async function tellSlack(item: SlackMessageItem, then: 'post' | 'update', deps: MessageDeps): Promise<{ channel: string; ts: string }> {
  const message = messageOf(item.card);
  const budget = { budgetMs: deps.slackBudgetMs };
  if (then === 'update' && item.ts) {
    try {
      await deps.slack.call('chat.update', { channel: item.channel, ts: item.ts, ...message }, budget);
      return { channel: item.channel, ts: item.ts };
    } catch (error) {
      // Someone deleted the message in Slack: announce the connection again.
      if (!(error instanceof SlackApiError && error.code === 'message_not_found')) throw error;
      logger.warn('the Slack message was deleted; posting it again', { serviceId: item.serviceId, endpointId: item.endpointId });
    }
  }
  const answer = await deps.slack.call('chat.postMessage', { channel: item.channel, ...message, unfurl_links: false, unfurl_media: false }, budget);
  if (typeof answer.ts !== 'string' || typeof answer.channel !== 'string') throw new SlackApiError('chat.postMessage', 'invalid_response');
  return { channel: answer.channel, ts: answer.ts };
}

/** Records what Slack shows and lets the lease go; cards stored meanwhile stay (the next round shows them). */
async function recordShown(item: SlackMessageItem, token: string, shown: { channel: string; ts: string; sequence: number }, deps: MessageDeps): Promise<void> {
  const { getItem = getSlackMessage, putItem = putSlackMessage } = deps;
  let current: SlackMessageItem | undefined = item;
  for (let attempt = 1; current; attempt++) {
    const next = afterShown(current, token, shown);
    if (!next) throw new ConflictError(`the lease on the Slack message about ${item.endpointId} was taken over while it was held`);
    try {
      await putItem(next, current.version);
      return;
    } catch (error) {
      if (!(error instanceof ConflictError) || attempt >= MAX_WRITE_ATTEMPTS) throw error;
      current = await getItem(item.serviceId, item.endpointId);
    }
  }
}

/** Lets the lease go after Slack could not be told, so that a retry need not wait for it to expire. */
async function letGo(item: SlackMessageItem, token: string, deps: MessageDeps): Promise<void> {
  const { getItem = getSlackMessage, putItem = putSlackMessage } = deps;
  try {
    const current = await getItem(item.serviceId, item.endpointId);
    const next = current && released(current, token);
    if (next && current) await putItem(next, current.version);
  } catch (error) {
    // The lease expires on its own; the error that matters is Slack's, thrown by the caller.
    logger.warn('could not let go of the lease on a Slack message', { endpointId: item.endpointId, error });
  }
}
