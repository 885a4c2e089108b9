import { LOCAL_SLACK, type SlackWorkspace } from './workspace';

/**
 * Slack's Web API at /local/slack/api/<method>, for the methods the app calls.
 * As Slack does: the token from `Authorization: Bearer` (or a `token` field),
 * arguments as form fields, or as JSON for the methods that take JSON; HTTP 200
 * with `{"ok": false, "error": "<code>"}` for what it refuses, and HTTP 429 with
 * `Retry-After` beyond a method's rate limit.
 */

export const SLACK_API_PATH = '/local/slack/api/';

/** Methods that read a JSON body; the others read only form fields and the query string. */
const JSON_METHODS = new Set(['chat.postMessage', 'chat.update', 'chat.postEphemeral', 'views.open']);
/** Block Kit's limits: blocks in a message and in a modal; a modal's title; its private_metadata. */
const MAX_MESSAGE_BLOCKS = 50;
const MAX_VIEW_BLOCKS = 100;
const MAX_TITLE_LENGTH = 24;
const MAX_PRIVATE_METADATA = 3000;

export interface SlackHttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

type Args = Record<string, unknown>;
type Method = (args: Args, workspace: SlackWorkspace) => Record<string, unknown>;

class SlackRefusal extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

const METHODS = new Map<string, Method>([
  ['chat.postMessage', postMessage],
  ['chat.update', updateMessage],
  ['chat.postEphemeral', postEphemeral],
  ['views.open', openView],
  ['usergroups.users.list', listGroupUsers],
]);

/** Answers one Web API request. */
export function answerSlackApi(
  workspace: SlackWorkspace,
  request: { method: string; path: string; query: string; headers: Record<string, string | string[] | undefined>; body: string },
): SlackHttpAnswer {
  const name = request.path.slice(SLACK_API_PATH.length);
  const run = METHODS.get(name);
  if (!run) return answer(404, { ok: false, error: 'unknown_method' });
  try {
    const args = argumentsOf(name, request);
    const token = bearerOf(request.headers.authorization) ?? (typeof args.token === 'string' ? args.token : undefined);
    if (!token) return answer(200, { ok: false, error: 'not_authed' });
    if (token !== LOCAL_SLACK.botToken) return answer(200, { ok: false, error: 'invalid_auth' });
    const channelArg = typeof args.channel === 'string' ? args.channel : undefined;
    const waitMs = workspace.throttle(name, channelArg && (workspace.channelId(channelArg) ?? channelArg));
    if (waitMs > 0) return answer(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(Math.ceil(waitMs / 1000)) });
    return answer(200, { ok: true, ...run(args, workspace) });
  } catch (error) {
    if (error instanceof SlackRefusal) return answer(200, { ok: false, error: error.code });
    throw error;
  }
}

function postMessage(args: Args, workspace: SlackWorkspace) {
  const channel = requireChannel(args, workspace);
  const { text, blocks } = contentOf(args);
  if (typeof args.thread_ts === 'string') {
    const parent = workspace.message(args.thread_ts);
    if (!parent || parent.channel !== channel) throw new SlackRefusal('thread_not_found');
    const reply = workspace.reply(parent, text);
    return { channel, ts: reply.ts, message: { ...messageView(reply.ts, text, blocks), thread_ts: parent.ts } };
  }
  const message = workspace.post(channel, text, blocks);
  return { channel, ts: message.ts, message: messageView(message.ts, text, blocks) };
}

function updateMessage(args: Args, workspace: SlackWorkspace) {
  const channel = requireChannel(args, workspace);
  const ts = requireString(args, 'ts');
  const message = workspace.message(ts);
  if (!message || message.channel !== channel) throw new SlackRefusal('message_not_found');
  const { text, blocks } = contentOf(args);
  workspace.update(message, text, blocks);
  return { channel, ts, text, message: messageView(ts, text, blocks) };
}

function postEphemeral(args: Args, workspace: SlackWorkspace) {
  const channel = requireChannel(args, workspace);
  const user = requireString(args, 'user');
  if (!workspace.users.has(user)) throw new SlackRefusal('user_not_in_channel');
  const { text } = contentOf(args);
  return { message_ts: workspace.postEphemeral(channel, user, text).messageTs };
}

function openView(args: Args, workspace: SlackWorkspace) {
  const triggerId = requireString(args, 'trigger_id');
  const view = typeof args.view === 'string' ? parseJson(args.view) : args.view;
  if (typeof view !== 'object' || view === null || Array.isArray(view)) throw new SlackRefusal('invalid_arguments');
  const problem = invalidView(view as Args);
  if (problem) throw new SlackRefusal(problem);
  const opened = workspace.openView(triggerId, view as Args);
  if ('error' in opened) throw new SlackRefusal(opened.error);
  return {
    view: {
      ...(view as Args),
      id: opened.id,
      team_id: LOCAL_SLACK.teamId,
      state: { values: {} },
      hash: opened.hash,
      app_id: LOCAL_SLACK.appId,
      bot_id: LOCAL_SLACK.botId,
      root_view_id: opened.id,
      previous_view_id: null,
    },
  };
}

function listGroupUsers(args: Args, workspace: SlackWorkspace) {
  const group = requireString(args, 'usergroup');
  const users = workspace.userGroups.get(group);
  if (!users) throw new SlackRefusal('no_such_subteam');
  return { users };
}

/** What Block Kit refuses in a modal: not a modal, a title too long, too many blocks or metadata. */
function invalidView(view: Args): string | undefined {
  const title = (view.title as { text?: unknown } | undefined)?.text;
  if (view.type !== 'modal' || typeof title !== 'string' || title.length > MAX_TITLE_LENGTH) return 'invalid_arguments';
  if (!Array.isArray(view.blocks) || view.blocks.length > MAX_VIEW_BLOCKS) return 'invalid_blocks';
  if (typeof view.private_metadata === 'string' && view.private_metadata.length > MAX_PRIVATE_METADATA) return 'invalid_arguments';
  return undefined;
}

function contentOf(args: Args): { text: string; blocks: unknown[] } {
  const blocks = typeof args.blocks === 'string' ? parseJson(args.blocks) : (args.blocks ?? []);
  if (!Array.isArray(blocks) || blocks.length > MAX_MESSAGE_BLOCKS) throw new SlackRefusal('invalid_blocks');
  const text = typeof args.text === 'string' ? args.text : '';
  if (!text && blocks.length === 0) throw new SlackRefusal('no_text');
  return { text, blocks };
}

function messageView(ts: string, text: string, blocks: unknown[]) {
  return { type: 'message', subtype: 'bot_message', user: LOCAL_SLACK.botUserId, bot_id: LOCAL_SLACK.botId, app_id: LOCAL_SLACK.appId, team: LOCAL_SLACK.teamId, ts, text, blocks };
}

function requireChannel(args: Args, workspace: SlackWorkspace): string {
  const channel = workspace.channelId(requireString(args, 'channel'));
  if (!channel) throw new SlackRefusal('channel_not_found');
  return channel;
}

function requireString(args: Args, name: string): string {
  const value = args[name];
  if (typeof value !== 'string' || value === '') throw new SlackRefusal(name === 'channel' ? 'channel_not_found' : 'invalid_arguments');
  return value;
}

/** The call's arguments: the query string, form fields, and (for methods that take it) a JSON body. */
function argumentsOf(method: string, request: { query: string; headers: Record<string, string | string[] | undefined>; body: string }): Args {
  const args: Args = Object.fromEntries(new URLSearchParams(request.query));
  const mediaType = String(request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (mediaType === 'application/x-www-form-urlencoded') Object.assign(args, Object.fromEntries(new URLSearchParams(request.body)));
  if (mediaType === 'application/json' && JSON_METHODS.has(method)) {
    const json = parseJson(request.body);
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) Object.assign(args, json);
    else throw new SlackRefusal('invalid_json');
  }
  return args;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new SlackRefusal('invalid_json');
  }
}

function bearerOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return /^Bearer\s+(\S+)$/i.exec(value ?? '')?.[1];
}

function answer(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): SlackHttpAnswer {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) };
}
