import { describe, expect, it, vi } from 'vitest';
import type { ConnectionRecord } from '../../lib/domain/connection';
import { ActionFailedError, ConflictError } from '../../lib/errors';
import { forgetGroupMembers } from '../../lib/slack/approvers';
import { handleInteraction, type InteractionDeps } from '../../lib/slack/interactions';
import { LOCAL_SLACK, SlackWorkspace } from '../../local/slack/workspace';
import { simulatedSlack } from '../support/slack';

// Clicks and form submissions when something fails on the way: the user is told, nothing is decided.

const SERVICE = 'vpce-svc-0123456789abcdef0';
const ENDPOINT = 'vpce-0123456789abcdef0';

const held: ConnectionRecord = {
  serviceId: SERVICE,
  endpointId: ENDPOINT,
  ownerAccountId: '999988887777',
  region: 'us-east-1',
  state: 'pendingAcceptance',
  decision: { outcome: 'hold', acted: false, rule: 'onUnmatched:hold', reason: 'on no list', decidedBy: 'policy', decidedAt: '2026-01-01T00:00:00Z' },
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  version: 2,
  history: [],
};

function setup(approvers: string[], overrides: Partial<InteractionDeps> = {}) {
  forgetGroupMembers();
  const workspace = new SlackWorkspace();
  const message = workspace.post(LOCAL_SLACK.channel.id, 'Approval needed', []);
  const decide = vi.fn(async () => {
    throw new Error('not expected');
  });
  const deps: InteractionDeps = { slack: simulatedSlack(workspace), approvers, channel: LOCAL_SLACK.channel.id, decide, getRecord: async () => held, showCard: async () => ({ outcome: 'left-to-holder' }), ...overrides };
  return { workspace, message, decide, deps };
}

function click(ts: string, triggerId: string, userId: string = LOCAL_SLACK.approver) {
  return {
    type: 'block_actions',
    team: { id: LOCAL_SLACK.teamId },
    user: { id: userId },
    trigger_id: triggerId,
    container: { type: 'message', message_ts: ts, channel_id: LOCAL_SLACK.channel.id },
    actions: [{ action_id: 'accept', block_id: 'decide', value: `${SERVICE}/${ENDPOINT}` }],
  };
}

function submission(reason: string) {
  return {
    type: 'view_submission',
    team: { id: LOCAL_SLACK.teamId },
    user: { id: LOCAL_SLACK.approver },
    view: {
      callback_id: 'decide-connection',
      private_metadata: JSON.stringify({ serviceId: SERVICE, endpointId: ENDPOINT, action: 'accept', channel: LOCAL_SLACK.channel.id, ts: '1.000001' }),
      state: { values: { reason: { reason: { type: 'plain_text_input', value: reason } } } },
    },
  };
}

describe('Slack interactions that cannot go through', () => {
  it('refuses, saying why, when the approvers user group cannot be read from Slack', async () => {
    const { workspace, message, deps } = setup(['S0NOSUCHGROUP']);
    const before = workspace.ephemeralCount();

    const reply = await handleInteraction(click(message.ts, workspace.issueTrigger(LOCAL_SLACK.approver)), deps);

    expect(reply).toEqual({});
    expect(workspace.ephemeralsSince(before, LOCAL_SLACK.approver).map((e) => e.text)).toEqual([
      'Could not check that you are an approver (Slack answered no_such_subteam). Nothing was changed; try again shortly.',
    ]);
  });

  it('asks for another click when the trigger has expired before the form could open', async () => {
    const { workspace, message, deps } = setup([LOCAL_SLACK.approver]);
    const before = workspace.ephemeralCount();

    await handleInteraction(click(message.ts, 'not-a-trigger-slack-issued'), deps);

    expect(workspace.ephemeralsSince(before, LOCAL_SLACK.approver).map((e) => e.text)).toEqual([
      'Slack could not open the form in time (invalid_trigger_id). Nothing was changed; click Accept again.',
    ]);
  });

  it("shows the engine's 409 and EC2's failure in the form, which stays open", async () => {
    const conflict = setup([LOCAL_SLACK.approver], {
      decide: async () => {
        throw new ConflictError(`connection ${ENDPOINT} is pending (accepted by arn:aws:iam::1:user/a at 2026-01-01T00:00:00Z), so it cannot be accepted`);
      },
    });
    const failed = setup([LOCAL_SLACK.approver], {
      decide: async () => {
        throw new ActionFailedError(`EC2 did not accept connection ${ENDPOINT} (InternalError); the failure is recorded in its history, and asking again is safe`);
      },
    });

    expect(await handleInteraction(submission('ticket 7'), conflict.deps)).toEqual({
      body: { response_action: 'errors', errors: { reason: expect.stringMatching(/^Conflict: connection .*\(accepted by arn:aws:iam::1:user\/a/) } },
    });
    expect(await handleInteraction(submission('ticket 7'), failed.deps)).toEqual({
      body: { response_action: 'errors', errors: { reason: expect.stringContaining('EC2 did not accept') } },
    });
  });

  it('decides nothing for a submission by someone who is not an approver (any more)', async () => {
    const { decide, deps } = setup([LOCAL_SLACK.lead]);

    const reply = await handleInteraction(submission('ticket 7'), deps);

    expect(reply).toEqual({ body: { response_action: 'errors', errors: { reason: expect.stringContaining('You are not an approver') } } });
    expect(decide).not.toHaveBeenCalled();
  });
});
