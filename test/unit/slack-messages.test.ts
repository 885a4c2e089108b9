import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConnectionRecord } from '../../lib/domain/connection';
import type { OutboundEvent } from '../../lib/domain/outbound-event';
import { ConflictError } from '../../lib/errors';
import { cardOf, messageOf, type CardEvent } from '../../lib/slack/message-card';
import type { SlackMessageItem } from '../../lib/slack/message-sync';
import { showEvent, type MessageDeps } from '../../lib/slack/messages';
import { LOCAL_SLACK, SlackWorkspace } from '../../local/slack/workspace';
import { simulatedSlack } from '../support/slack';

// One Slack message per connection, kept in step with its events however they arrive:
// in any order, more than once, and handled by several invocations at the same time.

const SERVICE = 'vpce-svc-0123456789abcdef0';
const ENDPOINT = 'vpce-0123456789abcdef0';
const CHANNEL = LOCAL_SLACK.channel.id;

function event(eventType: OutboundEvent['eventType'], sequence: number, decision: Partial<NonNullable<OutboundEvent['decision']>> = {}): CardEvent {
  return {
    eventId: `${eventType}-${sequence}`,
    eventType,
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, sequence)).toISOString(),
    sequence,
    serviceId: SERVICE,
    endpointId: ENDPOINT,
    ownerAccountId: '999988887777',
    region: 'eu-west-1',
    state: eventType === 'accepted' ? 'pending' : eventType === 'rejected' ? 'rejected' : 'pendingAcceptance',
    decision: { outcome: 'hold', acted: false, rule: 'onUnmatched:hold', reason: 'account 999988887777 is on no list', decidedBy: 'policy', ...decision },
    ...(eventType === 'action-failed' ? { error: { code: 'InternalError', message: 'EC2 failed' } } : {}),
  };
}

/** A connection's life as its events tell it: held, perhaps a failed accept, decided, perhaps revoked. */
const lives = fc
  .record({ failedFirst: fc.boolean(), outcome: fc.constantFrom('accept', 'reject'), revoked: fc.boolean() })
  .map(({ failedFirst, outcome, revoked }) => {
    const events = [event('approval-needed', 2)];
    if (failedFirst) events.push(event('action-failed', 3));
    const decided = outcome === 'accept' ? 'accepted' : 'rejected';
    events.push(event(decided, 4, { outcome, acted: true, rule: 'approver', reason: 'ticket 1', decidedBy: 'slack:T0/U0' }));
    if (outcome === 'accept' && revoked) events.push(event('rejected', 6, { outcome: 'reject', acted: true, rule: 'approver:revoke', reason: 'over', decidedBy: 'slack:T0/U0' }));
    return events;
  });

/** The record once every event was recorded: what a handler reads when it checks. */
function recordAfter(events: CardEvent[]): ConnectionRecord {
  const last = events.at(-1) as CardEvent;
  return {
    serviceId: SERVICE,
    endpointId: ENDPOINT,
    ownerAccountId: last.ownerAccountId,
    region: last.region,
    state: last.state as ConnectionRecord['state'],
    decision: { ...(last.decision as NonNullable<ConnectionRecord['decision']>), decidedAt: last.occurredAt },
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: last.occurredAt,
    version: last.sequence,
    history: [],
  };
}

/** The message items, in memory, with DynamoDB's conditional write. */
function itemStore() {
  const items = new Map<string, SlackMessageItem>();
  const key = (serviceId: string, endpointId: string) => `${serviceId}/${endpointId}`;
  return {
    items,
    getItem: async (serviceId: string, endpointId: string) => structuredClone(items.get(key(serviceId, endpointId))),
    putItem: async (item: SlackMessageItem, expectedVersion: number | undefined) => {
      if (items.get(key(item.serviceId, item.endpointId))?.version !== expectedVersion) throw new ConflictError('changed by another writer');
      items.set(key(item.serviceId, item.endpointId), structuredClone(item));
    },
  };
}

const header = (blocks: unknown[]) => ((blocks[0] as { text: { text: string } }).text.text);

describe('a Slack message kept in step with its events', () => {
  it('ends showing the newest event, in one message, whatever the order, the copies and the interleaving of deliveries', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        lives.chain((events) =>
          fc.tuple(fc.constant(events), fc.shuffledSubarray(events.flatMap((e) => [e, e, e]), { minLength: events.length })).filter(([all, delivered]) =>
            all.every((e) => delivered.includes(e)),
          ),
        ),
        async (scheduler, [events, deliveries]) => {
          const workspace = new SlackWorkspace();
          const store = itemStore();
          const deps: MessageDeps = {
            slack: simulatedSlack(workspace, (call) => scheduler.schedule(Promise.resolve()).then(call)),
            channel: CHANNEL,
            slackBudgetMs: 1_000,
            getItem: scheduler.scheduleFunction(store.getItem),
            putItem: scheduler.scheduleFunction(store.putItem),
            getRecord: scheduler.scheduleFunction(async () => recordAfter(events)),
          };

          await scheduler.waitFor(Promise.all(deliveries.map((delivered) => showEvent(delivered, deps))));

          const newest = cardOf(events.at(-1) as CardEvent);
          const [message, ...more] = workspace.channelMessages();
          expect(more).toEqual([]);
          expect(message?.blocks).toEqual(newest && messageOf(newest).blocks);
          const item = [...store.items.values()][0];
          expect(item).toMatchObject({ ts: message?.ts, shownSequence: events.at(-1)?.sequence });
          expect(item?.lease).toBeUndefined();
        },
      ),
      { numRuns: 150 },
    );
  });

  it('posts nothing for a decision about a connection no message announced', async () => {
    const workspace = new SlackWorkspace();
    const store = itemStore();

    const shown = await showEvent(event('accepted', 2, { outcome: 'accept', acted: true, rule: 'allow:acme', decidedBy: 'policy' }), {
      slack: simulatedSlack(workspace),
      channel: CHANNEL,
      slackBudgetMs: 1_000,
      ...store,
    });

    expect(shown).toEqual({ outcome: 'ignored', why: 'no message announces this connection' });
    expect(workspace.channelMessages()).toEqual([]);
    expect(store.items.size).toBe(0);
  });

  it('posts a request decided before its announcement was handled as decided, without buttons', async () => {
    const workspace = new SlackWorkspace();
    const events = [event('approval-needed', 2), event('rejected', 3, { outcome: 'reject', acted: true, rule: 'approver', reason: 'no', decidedBy: 'arn:aws:iam::000000000000:user/a' })];
    const deps = { slack: simulatedSlack(workspace), channel: CHANNEL, slackBudgetMs: 1_000, ...itemStore(), getRecord: async () => recordAfter(events) };

    await showEvent(events[1] as CardEvent, deps);
    await showEvent(events[0] as CardEvent, deps);

    const [message] = workspace.channelMessages();
    expect(header(message?.blocks ?? [])).toBe('Rejected: endpoint connection');
    expect(JSON.stringify(message?.blocks)).not.toContain('"actions"');
    expect(message?.updates).toEqual([]);
  });

  it('lets the lease go when Slack refuses, so that the retry posts', async () => {
    const workspace = new SlackWorkspace();
    const store = itemStore();
    const deps = { slack: simulatedSlack(workspace), channel: 'C0NOSUCHCHANNEL', slackBudgetMs: 1_000, ...store, getRecord: async () => undefined };

    await expect(showEvent(event('approval-needed', 2), deps)).rejects.toThrow(/channel_not_found/);

    expect([...store.items.values()][0]?.lease).toBeUndefined();
  });
});

describe('reminders in the thread', () => {
  it('answers a reminder once, however often it is delivered, and not once the request is decided', async () => {
    const workspace = new SlackWorkspace();
    const deps = { slack: simulatedSlack(workspace), channel: CHANNEL, slackBudgetMs: 1_000, ...itemStore(), getRecord: async () => undefined };
    await showEvent(event('approval-needed', 2), deps);

    await Promise.all([showEvent(event('approval-reminder', 3), deps), showEvent(event('approval-reminder', 3), deps)]);
    await showEvent(event('approval-reminder', 3), deps);
    await showEvent(event('accepted', 4, { outcome: 'accept', acted: true, rule: 'approver', decidedBy: 'policy' }), deps);
    await showEvent(event('approval-reminder', 5), deps);

    const [message] = workspace.channelMessages();
    expect(message?.replies.map((reply) => reply.text)).toEqual([expect.stringContaining('Still waiting for an approver')]);
  });

  it('announces a request held before Slack was set up when its reminder comes', async () => {
    const workspace = new SlackWorkspace();
    const deps = { slack: simulatedSlack(workspace), channel: CHANNEL, slackBudgetMs: 1_000, ...itemStore(), getRecord: async () => undefined };

    await showEvent(event('approval-reminder', 7), deps);

    const [message] = workspace.channelMessages();
    expect(header(message?.blocks ?? [])).toBe('Approval needed: endpoint connection');
    expect(message?.replies).toHaveLength(1);
  });
});

describe('the message of a card', () => {
  const held = cardOf(event('approval-needed', 2, { reason: 'account <!channel> & co is on no list' }));

  it('asks with Accept and Reject buttons that name the connection, and shows the held reason escaped', () => {
    const { blocks, text } = messageOf(held ?? ({} as never));
    const actions = blocks.find((block) => block.type === 'actions') as { block_id: string; elements: { action_id: string; value: string; style: string }[] };

    expect(text).toBe(`Approval needed: account 999988887777 to ${SERVICE} (endpoint ${ENDPOINT}, eu-west-1)`);
    expect(actions.elements.map(({ action_id, value, style }) => [action_id, value, style])).toEqual([
      ['accept', `${SERVICE}/${ENDPOINT}`, 'primary'],
      ['reject', `${SERVICE}/${ENDPOINT}`, 'danger'],
    ]);
    expect(JSON.stringify(blocks)).toContain('account &lt;!channel&gt; &amp; co is on no list');
    expect(JSON.stringify(blocks)).not.toContain('<!channel>');
  });

  it('shows where the service is when the event says, and who decided, a Slack user as a mention', () => {
    const decided = cardOf({
      ...event('accepted', 4, { outcome: 'accept', acted: true, rule: 'approver', reason: 'ok', decidedBy: 'slack:T0LOCALTEAM/U0LOCALAPPROVER' }),
      providerAccountId: '123456789012',
      serviceRegion: 'eu-central-1',
    });
    const { blocks } = messageOf(decided ?? ({} as never));

    expect(header(blocks)).toBe('Accepted: endpoint connection');
    expect(JSON.stringify(blocks)).toContain('account 123456789012, eu-central-1');
    expect(JSON.stringify(blocks)).toContain('<@U0LOCALAPPROVER> (slack:T0LOCALTEAM/U0LOCALAPPROVER)');
    expect(blocks.some((block) => block.type === 'actions')).toBe(false);
  });

  it('tells a revocation from a rejection by its rule', () => {
    const revoked = cardOf(event('rejected', 6, { outcome: 'reject', acted: true, rule: 'enforce:deny:offboarded', reason: 'denied', decidedBy: 'policy' }));
    const rejected = cardOf(event('rejected', 4, { outcome: 'reject', acted: true, rule: 'deny:offboarded', reason: 'denied', decidedBy: 'policy' }));

    expect(revoked?.status).toBe('revoked');
    expect(rejected?.status).toBe('rejected');
  });

  it('draws nothing for events a message does not show', () => {
    expect(cardOf(event('approval-reminder', 5))).toBeUndefined();
  });
});
