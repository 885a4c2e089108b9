import { rememberSlackRequest } from '../aws/slack-store';
import { slackSettings } from '../config';
import { json, type HttpResponse } from '../http/responses';
import type { Route } from '../http/router';
import { slackApi, slackSigningSecret } from './app';
import { handleInteraction } from './interactions';
import { authenticateSlackRequest, interactionPayload } from './requests';

/** Slack's interactivity request URL (openapi.yaml; serverless.yml through stack/slack.cjs). */
export const slackRoutes: Route[] = [
  {
    method: 'POST',
    path: '/chat/slack/interactions',
    // No IAM or JWT authorizer: Slack cannot sign with either. Its signature is the authentication.
    access: 'public',
    handle: async ({ event }): Promise<HttpResponse> => {
      const request = { headers: event.headers, body: Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8') };
      await authenticateSlackRequest(request, { signingSecret: await slackSigningSecret(), remember: rememberSlackRequest, now: new Date() });
      const { approvers, channel } = slackSettings();
      const reply = await handleInteraction(interactionPayload(request), { slack: slackApi(), approvers, channel });
      // An empty 200 is what Slack wants for a click, and closes a submitted modal.
      return reply.body ? json(200, reply.body) : { statusCode: 200, body: '' };
    },
  },
];
