import { randomBytes } from 'node:crypto';
import { TokenBucket } from '../aws/token-bucket';

/**
 * A Slack workspace with the app installed, as the local stack's Slack
 * simulator holds it: its team, users, user groups and the approvals channel,
 * the messages the app posted (with every update), the ephemeral messages it
 * showed, and the modals it opened (each from a trigger_id that is valid for
 * 3 seconds, once).
 */

export const LOCAL_SLACK = {
  teamId: 'T0LOCALTEAM',
  teamDomain: 'vpce-gatekeeper-local',
  appId: 'A0LOCALAPP',
  botId: 'B0LOCALBOT',
  botUserId: 'U0LOCALBOT',
  /** The bot token the app's parameter holds; anything else is invalid_auth. */
  botToken: 'xoxb-local',
  /** The app's signing secret, which the simulator signs interactions with. */
  signingSecret: 'local-slack-signing-secret',
  /** The app's (deprecated) verification token, sent in every payload as Slack does. */
  verificationToken: 'local-verification-token',
  channel: { id: 'C0LOCALAPPROVALS', name: 'approvals' },
  /** slackApprovers locally: the approver, and the user group of the leads. */
  approver: 'U0LOCALAPPROVER',
  viewer: 'U0LOCALVIEWER',
  lead: 'U0LOCALLEAD',
  leadsGroup: 'S0LOCALLEADS',
} as const;

/** slackApprovers as the local stack sets it. */
export const LOCAL_SLACK_APPROVERS = `${LOCAL_SLACK.approver},${LOCAL_SLACK.leadsGroup}`;

export interface SlackUser {
  id: string;
  name: string;
}

export interface MessageVersion {
  text: string;
  blocks: unknown[];
  at: string;
}

/** A reply in a message's thread. */
export interface ThreadReply {
  ts: string;
  text: string;
  at: string;
}

/** A message in the channel: what it shows now, each chat.update it received, and the replies in its thread. */
export interface ChannelMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: unknown[];
  postedAt: string;
  updates: MessageVersion[];
  replies: ThreadReply[];
}

export interface EphemeralMessage {
  channel: string;
  user: string;
  text: string;
  messageTs: string;
  at: string;
}

export interface OpenedView {
  id: string;
  view: Record<string, unknown>;
  userId: string;
  hash: string;
}

/** How long a trigger_id can open a modal, and once. */
const TRIGGER_LIFETIME_MS = 3_000;

/**
 * Slack's rate limits per method: chat.postMessage about one message a second
 * per channel (with short bursts allowed), the others by tier per workspace
 * (Tier 2: 20 a minute; Tier 3: 50; Tier 4: 100), each with a minute's burst.
 */
const RATE_LIMITS: Record<string, { capacity: number; perSecond: number; per: 'channel' | 'workspace' }> = {
  'chat.postMessage': { capacity: 5, perSecond: 1, per: 'channel' },
  'chat.update': { capacity: 50, perSecond: 50 / 60, per: 'workspace' },
  'chat.postEphemeral': { capacity: 100, perSecond: 100 / 60, per: 'workspace' },
  'views.open': { capacity: 100, perSecond: 100 / 60, per: 'workspace' },
  'usergroups.users.list': { capacity: 20, perSecond: 20 / 60, per: 'workspace' },
};

export class SlackWorkspace {
  readonly users = new Map<string, SlackUser>([
    [LOCAL_SLACK.approver, { id: LOCAL_SLACK.approver, name: 'local-approver' }],
    [LOCAL_SLACK.viewer, { id: LOCAL_SLACK.viewer, name: 'local-viewer' }],
    [LOCAL_SLACK.lead, { id: LOCAL_SLACK.lead, name: 'local-lead' }],
  ]);
  readonly userGroups = new Map<string, string[]>([[LOCAL_SLACK.leadsGroup, [LOCAL_SLACK.lead]]]);
  private messages: ChannelMessage[] = [];
  /** The blocks each message was posted with, before any update. */
  private postedBlocks = new Map<string, unknown[]>();
  private ephemerals: EphemeralMessage[] = [];
  private triggers = new Map<string, { userId: string; issuedAt: number; used: boolean }>();
  private views = new Map<string, OpenedView>();
  private viewsByTrigger = new Map<string, string>();
  private buckets = new Map<string, TokenBucket>();
  private lastTs = 0;

  /** The channel a `channel` argument names (its id, or its name with or without #), if it exists. */
  channelId(channel: string): string | undefined {
    const { id, name } = LOCAL_SLACK.channel;
    return channel === id || channel === name || channel === `#${name}` ? id : undefined;
  }

  /** Takes a token for a call; the milliseconds to wait when there is none. */
  throttle(method: string, channel: string | undefined): number {
    const limit = RATE_LIMITS[method];
    if (!limit) return 0;
    const key = limit.per === 'channel' ? `${method} ${channel ?? ''}` : method;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(limit.capacity, limit.perSecond);
      this.buckets.set(key, bucket);
    }
    return bucket.take() ? 0 : Math.max(1, bucket.msUntilToken());
  }

  post(channel: string, text: string, blocks: unknown[]): ChannelMessage {
    const message: ChannelMessage = { channel, ts: this.nextTs(), text, blocks, postedAt: new Date().toISOString(), updates: [], replies: [] };
    this.messages.push(message);
    this.postedBlocks.set(message.ts, blocks);
    return message;
  }

  /** A reply in the thread of `parent`. */
  reply(parent: ChannelMessage, text: string): ThreadReply {
    const reply = { ts: this.nextTs(), text, at: new Date().toISOString() };
    parent.replies.push(reply);
    return reply;
  }

  message(ts: string): ChannelMessage | undefined {
    return this.messages.find((message) => message.ts === ts);
  }

  /** Every version of a message's blocks, newest first: as it shows now, back to as it was posted. */
  blockVersions(message: ChannelMessage): unknown[][] {
    return [message.blocks, ...message.updates.map((update) => update.blocks).reverse(), this.postedBlocks.get(message.ts) ?? []];
  }

  update(message: ChannelMessage, text: string, blocks: unknown[]): void {
    message.text = text;
    message.blocks = blocks;
    message.updates.push({ text, blocks, at: new Date().toISOString() });
  }

  postEphemeral(channel: string, user: string, text: string): EphemeralMessage {
    const ephemeral = { channel, user, text, messageTs: this.nextTs(), at: new Date().toISOString() };
    this.ephemerals.push(ephemeral);
    return ephemeral;
  }

  /** The ephemeral messages shown to a user after `since` (an index from ephemeralCount()). */
  ephemeralsSince(since: number, user: string): EphemeralMessage[] {
    return this.ephemerals.slice(since).filter((ephemeral) => ephemeral.user === user);
  }

  ephemeralCount(): number {
    return this.ephemerals.length;
  }

  /** A trigger_id for a user's click, as Slack puts in its payload. */
  issueTrigger(userId: string): string {
    const id = `${Date.now()}.${randomBytes(4).readUInt32BE()}.${randomBytes(16).toString('hex')}`;
    this.triggers.set(id, { userId, issuedAt: Date.now(), used: false });
    return id;
  }

  /** Opens a modal with a trigger_id; Slack's error code when it cannot. */
  openView(triggerId: string, view: Record<string, unknown>): OpenedView | { error: string } {
    const trigger = this.triggers.get(triggerId);
    if (!trigger) return { error: 'invalid_trigger_id' };
    if (trigger.used) return { error: 'exchanged_trigger_id' };
    if (Date.now() - trigger.issuedAt > TRIGGER_LIFETIME_MS) return { error: 'expired_trigger_id' };
    trigger.used = true;
    const opened = { id: `V0${randomBytes(5).toString('hex').toUpperCase()}`, view, userId: trigger.userId, hash: `${Date.now()}.${randomBytes(4).toString('hex')}` };
    this.views.set(opened.id, opened);
    this.viewsByTrigger.set(triggerId, opened.id);
    return opened;
  }

  /** The modal a trigger opened, if the app opened one with it. */
  viewOpenedBy(triggerId: string): OpenedView | undefined {
    const id = this.viewsByTrigger.get(triggerId);
    return id === undefined ? undefined : this.views.get(id);
  }

  closeView(id: string): void {
    this.views.delete(id);
  }

  /** Every message the app posted, oldest first, as it shows now and with its updates. */
  channelMessages(): ChannelMessage[] {
    return this.messages.map((message) => structuredClone(message));
  }

  reset(): void {
    this.messages = [];
    this.postedBlocks.clear();
    this.ephemerals = [];
    this.triggers.clear();
    this.views.clear();
    this.viewsByTrigger.clear();
    this.buckets.clear();
  }

  /** Slack's message ids: Unix seconds and six digits, unique and increasing in a channel. */
  private nextTs(): string {
    this.lastTs = Math.max(this.lastTs + 1, Date.now() * 1000);
    return `${Math.floor(this.lastTs / 1_000_000)}.${String(this.lastTs % 1_000_000).padStart(6, '0')}`;
  }
}
