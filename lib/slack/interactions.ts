import * as v from '../validation';
import { decideConnection, type ApproverDecision, type ConnectionView } from '../approvals';
import { getConnection } from '../aws/connection-store';
import type { ConnectionRecord } from '../domain/connection';
import { ENDPOINT_ID, SERVICE_ID } from '../domain/ids';
import { ActionFailedError, ConflictError, EC2ThrottledError, NotFoundError, ValidationError } from '../errors';
import { reasonSchema } from '../http/request';
import { logger } from '../logger';
import { isSlackApprover } from './approvers';
import {
  cardOfRecord,
  DECISION_MODAL_ID,
  decisionModal,
  DECIDE_BLOCK_ID,
  REASON_ACTION_ID,
  REASON_BLOCK_ID,
  SLACK_ACTIONS,
  type DecisionContext,
  type SlackAction,
} from './message-card';
import { showCard } from './messages';
import { SlackApiError, type SlackWebApi } from './web-api';

/**
 * What Slack sends when someone clicks Accept or Reject, and when they submit
 * the modal that asks why: a click opens the modal (views.open); the
 * submission decides through the approvers' entry point of the engine, as the
 * Slack user `slack:<team>/<user>`. Slack wants an answer within 3 seconds:
 * every Slack call here has a budget well inside that.
 */

/** How long one Slack call made while Slack waits for our answer may take. */
const INTERACTIVE_BUDGET_MS = 1_000;

const team = v.looseObject({ id: v.pipe(v.string(), v.minLength(1)) });
const user = v.looseObject({ id: v.pipe(v.string(), v.minLength(1)) });

const blockActionsSchema = v.looseObject({
  type: v.literal('block_actions'),
  team,
  user,
  trigger_id: v.string(),
  container: v.optional(v.looseObject({ message_ts: v.optional(v.string()), channel_id: v.optional(v.string()) })),
  channel: v.optional(v.looseObject({ id: v.string() })),
  message: v.optional(v.looseObject({ ts: v.optional(v.string()) })),
  actions: v.array(v.looseObject({ action_id: v.string(), block_id: v.optional(v.string()), value: v.optional(v.string()) })),
});

const viewSubmissionSchema = v.looseObject({
  type: v.literal('view_submission'),
  team,
  user,
  view: v.looseObject({
    callback_id: v.string(),
    private_metadata: v.string(),
    state: v.looseObject({
      values: v.record(v.string(), v.record(v.string(), v.looseObject({ value: v.optional(v.nullable(v.string())) }))),
    }),
  }),
});

const decisionContextSchema = v.object({
  serviceId: v.pipe(v.string(), v.regex(SERVICE_ID)),
  endpointId: v.pipe(v.string(), v.regex(ENDPOINT_ID)),
  action: v.picklist(['accept', 'reject']),
  channel: v.pipe(v.string(), v.minLength(1)),
  ts: v.pipe(v.string(), v.minLength(1)),
});

/** What the interactions route answers Slack: nothing (200, empty), or a body such as a modal's errors. */
export type InteractionReply = { body?: Record<string, unknown> };

export interface InteractionDeps {
  slack: SlackWebApi;
  /** slackApprovers: user ids and user group ids. */
  approvers: readonly string[];
  /** Where messages are posted (a message brought up to date stays where it is). */
  channel: string;
  decide?: (decision: ApproverDecision) => Promise<ConnectionView>;
  getRecord?: (serviceId: string, endpointId: string) => Promise<ConnectionRecord | undefined>;
  showCard?: typeof showCard;
}

const NOT_AN_APPROVER =
  'You are not an approver for vpce-gatekeeper: only the Slack users and user groups in its slackApprovers parameter may accept or reject. Nothing was changed.';

/** Handles one interaction payload Slack sent (its signature already checked). */
export async function handleInteraction(payload: unknown, deps: InteractionDeps): Promise<InteractionReply> {
  const type = typeof payload === 'object' && payload !== null ? (payload as { type?: unknown }).type : undefined;
  if (type === 'block_actions') return onButton(parse(blockActionsSchema, payload), deps);
  if (type === 'view_submission') return onSubmission(parse(viewSubmissionSchema, payload), deps);
  // view_closed, shortcuts and the like: nothing to do, and Slack wants its 200.
  logger.info('Slack interaction ignored', { type: typeof type === 'string' ? type : 'none' });
  return {};
}

/** The Slack user as the record names them. */
export function slackActor(teamId: string, userId: string): string {
  return `slack:${teamId}/${userId}`;
}

async function onButton(click: v.InferOutput<typeof blockActionsSchema>, deps: InteractionDeps): Promise<InteractionReply> {
  const pressed = click.actions.find((action) => action.block_id === DECIDE_BLOCK_ID || SLACK_ACTIONS.includes(action.action_id as SlackAction));
  if (!pressed || !SLACK_ACTIONS.includes(pressed.action_id as SlackAction)) return {};
  const action = pressed.action_id as SlackAction;
  const [serviceId = '', endpointId = ''] = (pressed.value ?? '').split('/');
  if (!SERVICE_ID.test(serviceId) || !ENDPOINT_ID.test(endpointId)) throw new ValidationError(`the ${action} button does not name a connection`);
  const channel = click.container?.channel_id ?? click.channel?.id;
  const ts = click.container?.message_ts ?? click.message?.ts;
  if (!channel || !ts) throw new ValidationError('the click names no message');
  const tell = (text: string) => ephemeral(deps, channel, click.user.id, text);
  logger.appendKeys({ serviceId, endpointId, slackUser: slackActor(click.team.id, click.user.id) });

  const approver = await approverCheck(click.user.id, deps);
  if (approver !== true) {
    logger.info('Slack click refused: not an approver', { action });
    await tell(approver);
    return {};
  }
  const current = await (deps.getRecord ?? getConnection)(serviceId, endpointId);
  if (!current) {
    await tell(`No connection ${endpointId} is known on endpoint service ${serviceId}. Nothing was changed.`);
    return {};
  }
  const decided = decidedElsewhere(current);
  if (decided) {
    logger.info('Slack click on a request already decided', { action, state: current.state });
    await Promise.all([tell(`${decided} Nothing was changed; the message now shows it.`), bringUpToDate(current, deps)]);
    return {};
  }
  const context: DecisionContext = { serviceId, endpointId, action, channel, ts };
  try {
    await deps.slack.call('views.open', { trigger_id: click.trigger_id, view: decisionModal(cardOfRecord(current), context) }, { budgetMs: INTERACTIVE_BUDGET_MS });
  } catch (error) {
    // A trigger opens a form within 3 seconds of the click, once: past that, the user clicks again.
    if (!(error instanceof SlackApiError && /_trigger_id$/.test(error.code))) throw error;
    logger.warn('the reason form could not be opened', { code: error.code });
    await tell(`Slack could not open the form in time (${error.code}). Nothing was changed; click ${action === 'accept' ? 'Accept' : 'Reject'} again.`);
  }
  return {};
}

async function onSubmission(submission: v.InferOutput<typeof viewSubmissionSchema>, deps: InteractionDeps): Promise<InteractionReply> {
  if (submission.view.callback_id !== DECISION_MODAL_ID) return {};
  const context = parseContext(submission.view.private_metadata);
  const actor = slackActor(submission.team.id, submission.user.id);
  logger.appendKeys({ serviceId: context.serviceId, endpointId: context.endpointId, slackUser: actor });
  const approver = await approverCheck(submission.user.id, deps);
  if (approver !== true) return reasonError(approver);
  const reason = v.safeParse(reasonSchema, submission.view.state.values[REASON_BLOCK_ID]?.[REASON_ACTION_ID]?.value ?? '');
  if (!reason.success) return reasonError(`The reason ${reason.issues[0].message}.`);
  try {
    const decided = await (deps.decide ?? decideConnection)({ ...context, reason: reason.output, actor });
    logger.info('decided from Slack', { action: context.action, state: decided.state });
    return {};
  } catch (error) {
    // Shown under the reason, in the modal: the first decision won, or EC2 failed; nothing is swallowed.
    if (error instanceof ConflictError) {
      logger.info('Slack decision refused', { status: 409, reason: error.message });
      const current = await (deps.getRecord ?? getConnection)(context.serviceId, context.endpointId).catch(() => undefined);
      if (current) await bringUpToDate(current, deps).catch((failure: unknown) => logger.warn('could not bring the Slack message up to date', { error: failure }));
      return reasonError(`Conflict: ${error.message}`);
    }
    if (error instanceof NotFoundError || error instanceof ActionFailedError || error instanceof EC2ThrottledError) {
      logger.info('Slack decision failed', { reason: error.message });
      return reasonError(error.message);
    }
    throw error;
  }
}

/** True for an approver; otherwise what to tell the user. A check that fails refuses (fail closed), saying so. */
async function approverCheck(userId: string, deps: InteractionDeps): Promise<true | string> {
  try {
    return (await isSlackApprover(userId, deps.approvers, deps.slack)) ? true : NOT_AN_APPROVER;
  } catch (error) {
    if (!(error instanceof SlackApiError)) throw error;
    logger.warn('could not read the approvers user groups from Slack', { code: error.code });
    return `Could not check that you are an approver (Slack answered ${error.code}). Nothing was changed; try again shortly.`;
  }
}

/** The modal's answer that shows `message` under the reason input, and keeps the modal open. */
function reasonError(message: string): InteractionReply {
  return { body: { response_action: 'errors', errors: { [REASON_BLOCK_ID]: message } } };
}

/** "This request was already accepted by X at T." when someone decided it since the message was drawn. */
function decidedElsewhere(current: ConnectionRecord): string | undefined {
  if (current.state === 'pendingAcceptance') return undefined;
  const decision = current.decision;
  const by = decision && decision.outcome !== 'hold' && decision.acted ? ` by ${decision.decidedBy} at ${decision.decidedAt}` : '';
  const what = current.state === 'rejected' ? 'rejected' : current.state === 'pending' || current.state === 'available' ? 'accepted' : current.state;
  return `This request was already ${what}${by}.`;
}

async function bringUpToDate(current: ConnectionRecord, deps: InteractionDeps): Promise<void> {
  const card = cardOfRecord(current);
  if (!card) return;
  await (deps.showCard ?? showCard)(card, { slack: deps.slack, channel: deps.channel, slackBudgetMs: INTERACTIVE_BUDGET_MS });
}

async function ephemeral(deps: InteractionDeps, channel: string, userId: string, text: string): Promise<void> {
  await deps.slack.call('chat.postEphemeral', { channel, user: userId, text }, { budgetMs: INTERACTIVE_BUDGET_MS });
}

function parseContext(raw: string): DecisionContext {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ValidationError('the modal carries no connection');
  }
  return parse(decisionContextSchema, json);
}

function parse<T extends v.Schema>(schema: T, value: unknown): v.InferOutput<T> {
  const parsed = v.safeParse(schema, value);
  if (!parsed.success) throw new ValidationError('not an interaction payload Slack sends', v.problems(parsed.issues));
  return parsed.output;
}
