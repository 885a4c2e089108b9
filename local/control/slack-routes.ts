import { z } from 'zod';
import { NotFoundError } from '../../lib/errors';
import { parseJsonBody } from '../http-io';
import { deliverClick } from '../slack/clicks';
import type { SlackWorkspace } from '../slack/workspace';
import type { AsyncFunction } from '../lambda/async-invocation';
import { ok, type Route } from './router';

/** The Slack simulator, and the function SNS invokes with the decisions (locally, as deployed). */
export interface SlackPlane {
  workspace: SlackWorkspace;
  /** The app's interactivity request URL: <base>/chat/slack/interactions. */
  interactionsUrl: string;
  /** The notifier, subscribed to the decisions topic. */
  notifier: AsyncFunction;
}

const clickBody = z.strictObject({
  ts: z.string().regex(/^\d+\.\d{6}$/, "must be a message's ts, such as 1714567890.000100"),
  actionId: z.enum(['accept', 'reject'], { error: 'must be accept or reject' }),
  userId: z.string().regex(/^[UW][A-Z0-9]+$/, 'must be a Slack user id such as U0LOCALAPPROVER'),
  reason: z.string().max(3000).optional(),
});

/** GET /local/slack/messages and POST /local/slack/click: what the channel shows, and a user clicking in it. */
export function slackRoutes(plane: SlackPlane | undefined): Route[] {
  const slack = () => {
    if (!plane) throw new NotFoundError('Slack is off in this local stack (LOCAL_SLACK=off)');
    return plane;
  };
  return [
    { method: 'GET', path: /^\/local\/slack\/messages$/, handle: () => ok({ messages: slack().workspace.channelMessages() }) },
    {
      method: 'POST',
      path: /^\/local\/slack\/click$/,
      handle: async (_, body) => {
        const { workspace, interactionsUrl } = slack();
        return ok(await deliverClick(parseJsonBody(body, clickBody), { workspace, interactionsUrl }));
      },
    },
  ];
}
