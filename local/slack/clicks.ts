import { randomBytes } from 'node:crypto';
import { slackSignature } from '../../lib/slack/signature';
import { ConflictError, NotFoundError, ValidationError } from '../../lib/errors';
import { LOCAL_SLACK, type ChannelMessage, type EphemeralMessage, type OpenedView, type SlackWorkspace } from './workspace';

/**
 * A user clicking a button of one of the app's messages, and then submitting
 * the modal the app opened, as Slack delivers both to the app's interactivity
 * request URL: form-encoded `payload=<JSON>`, signed with the app's signing
 * secret (`X-Slack-Signature`, `X-Slack-Request-Timestamp`), with the answer
 * awaited for 3 seconds at most.
 */

/** How long Slack waits for the app's answer before it shows the user an error. */
const ANSWER_TIMEOUT_MS = 3_000;

export interface Click {
  ts: string;
  actionId: 'accept' | 'reject';
  userId: string;
  /** What the user types in the modal's reason input. */
  reason?: string;
}

/** One request Slack made to the app, and what came back. */
export interface Delivery {
  type: 'block_actions' | 'view_submission';
  /** The HTTP status, or 'timeout' when the app took longer than Slack waits. */
  status: number | 'timeout';
  body: unknown;
  ms: number;
}

export interface ClickResult {
  /** The statuses the app answered, in order: the click, then the modal's submission. */
  statuses: (number | 'timeout')[];
  deliveries: Delivery[];
  /** Ephemeral messages the app showed the user meanwhile ("you are not an approver"). */
  ephemeral: Pick<EphemeralMessage, 'channel' | 'user' | 'text'>[];
  /**
   * The modal the click opened: submitted, still open with the errors the app
   * showed under its inputs, or left open because its required input was empty.
   */
  modal?: { title: string; outcome: 'submitted' | 'errors' | 'not-submitted'; errors?: Record<string, string>; why?: string };
}

/** Where the app's interactivity request URL is, and how to post to it. */
export interface ClickDeps {
  workspace: SlackWorkspace;
  interactionsUrl: string;
  fetch?: typeof fetch;
}

/** Delivers a click, and then the modal's submission with the reason, as Slack does. */
export async function deliverClick(click: Click, deps: ClickDeps): Promise<ClickResult> {
  const { workspace } = deps;
  const message = workspace.message(click.ts);
  if (!message) throw new NotFoundError(`the channel has no message ${click.ts}`);
  const user = workspace.users.get(click.userId);
  if (!user) throw new ValidationError(`the workspace has no user ${click.userId}: try ${[...workspace.users.keys()].join(', ')}`);
  const button = buttonOf(workspace.blockVersions(message), click.actionId);
  if (!button) throw new ConflictError(`message ${click.ts} has never shown a '${click.actionId}' button`);

  const ephemeralsBefore = workspace.ephemeralCount();
  const triggerId = workspace.issueTrigger(user.id);
  const deliveries: Delivery[] = [];
  deliveries.push(await deliver(deps, 'block_actions', blockActionsPayload(message, button, user, triggerId)));

  let modal: ClickResult['modal'];
  const opened = workspace.viewOpenedBy(triggerId);
  if (opened) {
    const title = String((opened.view.title as { text?: unknown } | undefined)?.text ?? '');
    const missing = requiredInputLeftEmpty(opened, click.reason);
    if (missing) {
      modal = { title, outcome: 'not-submitted', why: `the required input '${missing}' is empty: Slack does not submit the modal without it (give a reason)` };
    } else {
      const delivery = await deliver(deps, 'view_submission', viewSubmissionPayload(opened, user, click.reason ?? ''));
      deliveries.push(delivery);
      const errors = errorsOf(delivery.body);
      if (delivery.status === 200 && errors) modal = { title, outcome: 'errors', errors };
      else {
        if (delivery.status === 200) workspace.closeView(opened.id);
        modal = { title, outcome: 'submitted' };
      }
    }
  }
  return {
    statuses: deliveries.map((delivery) => delivery.status),
    deliveries,
    ephemeral: workspace.ephemeralsSince(ephemeralsBefore, user.id).map(({ channel, user: to, text }) => ({ channel, user: to, text })),
    ...(modal ? { modal } : {}),
  };
}

type Button = { action_id: string; block_id?: string; value?: string; text?: unknown; style?: string };

/**
 * The button a user clicks: on the message as it shows now or, when an update
 * has taken it away since, as the user's Slack still showed it (a click that
 * raced an update reaches the app all the same).
 */
function buttonOf(versions: unknown[][], actionId: string): (Button & { blockId: string }) | undefined {
  for (const blocks of versions) {
    for (const block of blocks as { type?: string; block_id?: string; elements?: Button[] }[]) {
      if (block.type !== 'actions') continue;
      const button = block.elements?.find((element) => element.action_id === actionId);
      if (button) return { ...button, blockId: block.block_id ?? '' };
    }
  }
  return undefined;
}

function blockActionsPayload(message: ChannelMessage, button: Button & { blockId: string }, user: { id: string; name: string }, triggerId: string) {
  const actionTs = `${(Date.now() / 1000).toFixed(6)}`;
  return {
    type: 'block_actions',
    user: { id: user.id, username: user.name, name: user.name, team_id: LOCAL_SLACK.teamId },
    api_app_id: LOCAL_SLACK.appId,
    token: LOCAL_SLACK.verificationToken,
    container: { type: 'message', message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
    trigger_id: triggerId,
    team: { id: LOCAL_SLACK.teamId, domain: LOCAL_SLACK.teamDomain },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: message.channel, name: LOCAL_SLACK.channel.name },
    message: { type: 'message', subtype: 'bot_message', user: LOCAL_SLACK.botUserId, bot_id: LOCAL_SLACK.botId, app_id: LOCAL_SLACK.appId, team: LOCAL_SLACK.teamId, ts: message.ts, text: message.text, blocks: message.blocks },
    state: { values: {} },
    response_url: `https://hooks.slack.com/actions/${LOCAL_SLACK.teamId}/${Date.now()}/${randomBytes(12).toString('hex')}`,
    actions: [
      {
        action_id: button.action_id,
        block_id: button.blockId,
        text: button.text,
        value: button.value,
        ...(button.style ? { style: button.style } : {}),
        type: 'button',
        action_ts: actionTs,
      },
    ],
  };
}

type InputBlock = { type?: string; block_id?: string; optional?: boolean; element?: { type?: string; action_id?: string } };

/** The modal's input blocks with a text input: the reason goes into the first. */
function textInputs(view: OpenedView): InputBlock[] {
  const blocks = (view.view.blocks ?? []) as InputBlock[];
  return blocks.filter((block) => block.type === 'input' && block.element?.type === 'plain_text_input');
}

function requiredInputLeftEmpty(view: OpenedView, reason: string | undefined): string | undefined {
  const [first, ...others] = textInputs(view);
  if (first && !first.optional && !reason?.trim()) return first.block_id ?? '';
  return others.find((block) => !block.optional)?.block_id;
}

function viewSubmissionPayload(opened: OpenedView, user: { id: string; name: string }, reason: string) {
  const values: Record<string, Record<string, { type: string; value: string | null }>> = {};
  textInputs(opened).forEach((block, index) => {
    values[block.block_id ?? ''] = { [block.element?.action_id ?? '']: { type: 'plain_text_input', value: index === 0 ? reason : null } };
  });
  return {
    type: 'view_submission',
    team: { id: LOCAL_SLACK.teamId, domain: LOCAL_SLACK.teamDomain },
    user: { id: user.id, username: user.name, name: user.name, team_id: LOCAL_SLACK.teamId },
    api_app_id: LOCAL_SLACK.appId,
    token: LOCAL_SLACK.verificationToken,
    trigger_id: `${Date.now()}.${randomBytes(4).readUInt32BE()}.${randomBytes(16).toString('hex')}`,
    view: {
      ...opened.view,
      id: opened.id,
      team_id: LOCAL_SLACK.teamId,
      state: { values },
      hash: opened.hash,
      app_id: LOCAL_SLACK.appId,
      bot_id: LOCAL_SLACK.botId,
      app_installed_team_id: LOCAL_SLACK.teamId,
      root_view_id: opened.id,
      previous_view_id: null,
      clear_on_close: false,
      notify_on_close: false,
      external_id: '',
    },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
}

/** Posts a payload to the app, signed now with the app's signing secret, and waits 3 s at most. */
async function deliver(deps: ClickDeps, type: Delivery['type'], payload: unknown): Promise<Delivery> {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const timestamp = String(Math.floor(Date.now() / 1000));
  const started = performance.now();
  try {
    const response = await (deps.fetch ?? fetch)(deps.interactionsUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
        'x-slack-request-timestamp': timestamp,
        'x-slack-signature': slackSignature(LOCAL_SLACK.signingSecret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    const text = await response.text();
    return { type, status: response.status, body: parseIfJson(text), ms: Math.round(performance.now() - started) };
  } catch (error) {
    if (error instanceof Error && error.name === 'TimeoutError') return { type, status: 'timeout', body: undefined, ms: Math.round(performance.now() - started) };
    throw error;
  }
}

function errorsOf(body: unknown): Record<string, string> | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { response_action: action, errors } = body as { response_action?: unknown; errors?: unknown };
  return action === 'errors' && typeof errors === 'object' && errors !== null ? (errors as Record<string, string>) : undefined;
}

function parseIfJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
