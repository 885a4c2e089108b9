import type { ConnectionRecord } from '../domain/connection';
import type { OutboundEvent } from '../domain/outbound-event';

/**
 * What the Slack message about one connection shows, and how it is drawn in
 * Block Kit: pure, so that the message for every state can be tested without Slack.
 */

/** The buttons' action ids, which the interactions handler reads back. */
export type SlackAction = 'accept' | 'reject';
export const SLACK_ACTIONS: readonly SlackAction[] = ['accept', 'reject'];
/** The block holding the buttons. */
export const DECIDE_BLOCK_ID = 'decide';
/** The modal that asks for the reason: its callback id, and its input's block and action ids. */
export const DECISION_MODAL_ID = 'decide-connection';
export const REASON_BLOCK_ID = 'reason';
export const REASON_ACTION_ID = 'reason';
/** The most a reason may hold, as the approvals API allows. */
const MAX_REASON_LENGTH = 1000;

export type CardStatus = 'held' | 'accepted' | 'rejected' | 'revoked' | 'closed';

/** One connection as its message shows it: the request, and the latest decision about it. */
export interface ConnectionCard {
  serviceId: string;
  endpointId: string;
  ownerAccountId: string;
  /** The consumer's Region. */
  region: string;
  /** Where the endpoint service is, once events carry it. */
  providerAccountId?: string;
  serviceRegion?: string;
  status: CardStatus;
  rule?: string;
  reason?: string;
  decidedBy?: string;
  decidedAt?: string;
  /** An action on the request that failed; the request still waits. */
  failure?: { code: string; message: string };
  /** The connection's event sequence this card shows: a card with a larger one is newer. */
  sequence: number;
}

/** The events a message shows; the others (policy changes, …) leave it as it is. */
export const CARD_EVENT_TYPES = ['approval-needed', 'accepted', 'rejected', 'action-failed'] as const;
/** What the notifier is subscribed to: the events a message shows, and reminders, answered in its thread. */
export const SLACK_EVENT_TYPES = [...CARD_EVENT_TYPES, 'approval-reminder'] as const;

/** Outbound events, with the fields the fleet adds when a service lives in another account or Region. */
export type CardEvent = OutboundEvent & { providerAccountId?: string; serviceRegion?: string };

/** The card an event draws, or undefined for an event a message does not show. */
export function cardOf(event: CardEvent): ConnectionCard | undefined {
  const base = {
    serviceId: event.serviceId,
    endpointId: event.endpointId,
    ownerAccountId: event.ownerAccountId,
    region: event.region,
    ...(event.providerAccountId ? { providerAccountId: event.providerAccountId } : {}),
    ...(event.serviceRegion ? { serviceRegion: event.serviceRegion } : {}),
    rule: event.decision?.rule,
    reason: event.decision?.reason,
    decidedBy: event.decision?.decidedBy,
    decidedAt: event.decision?.decidedAt ?? event.occurredAt,
    sequence: event.sequence,
  };
  switch (event.eventType) {
    case 'approval-needed':
      return { ...base, status: 'held' };
    case 'accepted':
      return { ...base, status: 'accepted' };
    case 'rejected':
      return { ...base, status: isRevocation(event.decision?.rule) ? 'revoked' : 'rejected' };
    case 'action-failed':
      // The request still waits, held as before: the failure is shown with it.
      return { ...base, status: 'held', failure: event.error ?? { code: 'Unknown', message: 'the action failed' } };
    default:
      return undefined;
  }
}

/**
 * The card a connection's record draws: what the table says now, numbered with
 * the record's version. Where EC2's state (as recorded) says more than the
 * decision, such as a request accepted in the EC2 console or an endpoint its
 * owner deleted, the state wins. Undefined while the record decided nothing a
 * message shows.
 */
export function cardOfRecord(record: ConnectionRecord): ConnectionCard | undefined {
  const { decision, state } = record;
  const base = {
    serviceId: record.serviceId,
    endpointId: record.endpointId,
    ownerAccountId: record.ownerAccountId,
    region: record.region,
    sequence: record.version,
  };
  const decided = decision && { rule: decision.rule, reason: decision.reason, decidedBy: decision.decidedBy, decidedAt: decision.decidedAt };
  const outside = { decidedBy: 'someone outside vpce-gatekeeper', reason: `EC2 shows the connection ${state}`, decidedAt: record.updatedAt };
  if (state === 'pending' || state === 'available') {
    return { ...base, status: 'accepted', ...(decision?.outcome === 'accept' && decision.acted ? decided : outside) };
  }
  if (state === 'rejected') {
    if (decision?.outcome === 'reject' && decision.acted) return { ...base, status: isRevocation(decision.rule) ? 'revoked' : 'rejected', ...decided };
    return { ...base, status: 'rejected', ...outside };
  }
  if (state !== 'pendingAcceptance') return { ...base, status: 'closed', decidedBy: 'its owner or EC2', reason: `the endpoint is ${state}: there is nothing to decide`, decidedAt: record.updatedAt };
  return decision?.outcome === 'hold' ? { ...base, status: 'held', ...decided } : undefined;
}

/** A revocation is announced as `rejected`; its rule tells it apart (README: what enforcement revokes). */
function isRevocation(rule: string | undefined): boolean {
  return rule !== undefined && (rule.startsWith('enforce:') || rule.endsWith(':revoke'));
}

/** The reply in a held request's thread when it is still waiting after the policy's pendingTimeout. */
export function reminderText(card: ConnectionCard): string {
  const since = when(card.decidedAt);
  return `:hourglass: Still waiting for an approver: held since ${since}. Accept or reject it above.`;
}

/** A Block Kit block; only the shapes drawn here. */
export type Block = Record<string, unknown>;

/** The message for a card: fallback text (notifications, screen readers) and blocks. */
export function messageOf(card: ConnectionCard): { text: string; blocks: Block[] } {
  const blocks: Block[] = [
    { type: 'header', text: plain(HEADERS[card.status]) },
    { type: 'section', fields: fieldsOf(card) },
    { type: 'section', text: mrkdwn(decisionLine(card)) },
  ];
  if (card.failure) {
    blocks.push({
      type: 'context',
      elements: [mrkdwn(`:warning: The last action failed at EC2 (${escape(card.failure.code)}): ${escape(card.failure.message)}`)],
    });
  }
  if (card.status === 'held') {
    blocks.push({
      type: 'actions',
      block_id: DECIDE_BLOCK_ID,
      elements: [
        { type: 'button', action_id: 'accept', text: plain('Accept'), style: 'primary', value: connectionValue(card) },
        { type: 'button', action_id: 'reject', text: plain('Reject'), style: 'danger', value: connectionValue(card) },
      ],
    });
  }
  return { text: fallbackText(card), blocks };
}

const HEADERS: Record<CardStatus, string> = {
  held: 'Approval needed: endpoint connection',
  accepted: 'Accepted: endpoint connection',
  rejected: 'Rejected: endpoint connection',
  revoked: 'Revoked: endpoint connection',
  closed: 'Closed: endpoint connection',
};

function fieldsOf(card: ConnectionCard): Block[] {
  const where = [card.providerAccountId && `account ${card.providerAccountId}`, card.serviceRegion].filter(Boolean).join(', ');
  return [
    mrkdwn(`*Consumer account*\n\`${escape(card.ownerAccountId)}\``),
    mrkdwn(`*Consumer Region*\n${escape(card.region)}`),
    mrkdwn(`*Endpoint service*\n\`${escape(card.serviceId)}\`${where ? `\n${escape(where)}` : ''}`),
    mrkdwn(`*Endpoint*\n\`${escape(card.endpointId)}\``),
  ];
}

function decisionLine(card: ConnectionCard): string {
  const rule = card.rule ? ` (rule ${escape(card.rule)})` : '';
  const reason = card.reason ? `\n>${escape(card.reason).replace(/\n/g, '\n>')}` : '';
  if (card.status === 'held') return `*Held for an approver*${rule}, ${when(card.decidedAt)}: why${reason}`;
  const verb = { accepted: 'Accepted', rejected: 'Rejected', revoked: 'Revoked', closed: 'Closed' }[card.status];
  return `*${verb}* by ${who(card.decidedBy)}${rule}, ${when(card.decidedAt)}${reason}`;
}

function fallbackText(card: ConnectionCard): string {
  const subject = `account ${card.ownerAccountId} to ${card.serviceId} (endpoint ${card.endpointId}, ${card.region})`;
  if (card.status === 'held') return `Approval needed: ${subject}`;
  return `${HEADERS[card.status].split(':')[0]} by ${card.decidedBy ?? 'unknown'}: ${subject}`;
}

/** Who decided: a Slack user as a mention (with the id the record keeps), anyone else as recorded. */
function who(decidedBy: string | undefined): string {
  const slackUser = /^slack:[A-Z0-9]+\/([UW][A-Z0-9]+)$/.exec(decidedBy ?? '');
  if (slackUser) return `<@${slackUser[1]}> (${escape(decidedBy ?? '')})`;
  return escape(decidedBy ?? 'unknown');
}

/** Slack's date token: shown in each reader's time zone, the ISO time where it cannot be. */
function when(at: string | undefined): string {
  const ms = at === undefined ? Number.NaN : Date.parse(at);
  if (Number.isNaN(ms)) return 'at an unknown time';
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} at {time}|${at}>`;
}

/** What a button carries: the connection it decides. */
export function connectionValue(connection: { serviceId: string; endpointId: string }): string {
  return `${connection.serviceId}/${connection.endpointId}`;
}

/** Where the decision came from, carried through the modal (private_metadata). */
export interface DecisionContext {
  serviceId: string;
  endpointId: string;
  action: SlackAction;
  /** The message that was clicked. */
  channel: string;
  ts: string;
}

/** The modal that asks an approver why, before the decision is made. */
export function decisionModal(card: ConnectionCard | undefined, context: DecisionContext): Block {
  const verb = context.action === 'accept' ? 'Accept' : 'Reject';
  const subject = card
    ? `account \`${escape(card.ownerAccountId)}\` to \`${escape(card.serviceId)}\` (endpoint \`${escape(card.endpointId)}\`, ${escape(card.region)})`
    : `endpoint \`${escape(context.endpointId)}\` on \`${escape(context.serviceId)}\``;
  const held = card?.reason ? `\nHeld: ${escape(card.reason)}` : '';
  return {
    type: 'modal',
    callback_id: DECISION_MODAL_ID,
    private_metadata: JSON.stringify(context),
    title: plain(`${verb} connection`),
    submit: plain(verb),
    close: plain('Cancel'),
    blocks: [
      { type: 'section', text: mrkdwn(`${verb} the connection of ${subject}?${held}`) },
      {
        type: 'input',
        block_id: REASON_BLOCK_ID,
        label: plain('Reason'),
        hint: plain('Recorded with the decision and shown to everyone, as in the approvals API.'),
        element: {
          type: 'plain_text_input',
          action_id: REASON_ACTION_ID,
          multiline: true,
          max_length: MAX_REASON_LENGTH,
          placeholder: plain('e.g. ticket SEC-42'),
        },
      },
    ],
  };
}

function plain(text: string): Block {
  return { type: 'plain_text', text, emoji: false };
}

function mrkdwn(text: string): Block {
  return { type: 'mrkdwn', text };
}

/** Slack's mrkdwn escapes: the three characters that would otherwise make links and mentions (<!channel>). */
export function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
