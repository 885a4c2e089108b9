import { rememberSlackRequest } from '../lib/aws/slack-store';
import { config, slackSettings } from '../lib/config';
import { json, type HttpResponse } from '../lib/http/responses';
import { serveRoutes, type Route } from '../lib/http/router';
import { middyfy } from '../lib/lambda';
import { slackApi, slackSigningSecret } from '../lib/slack/app';
import { handleInteraction } from '../lib/slack/interactions';
import { authenticateSlackRequest, interactionPayload } from '../lib/slack/requests';

// Fail at cold start, naming the variable, rather than on Slack's first request.
config();
slackSettings();

/** Slack's interactivity request URL (openapi.yaml, serverless.yml through stack/slack.cjs). */
export const routes: Route[] = [
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

/** Slack's interactions (button clicks, modal submissions) behind API Gateway, outside IAM and JWT. */
export const handler = middyfy(serveRoutes(routes, () => ({ principals: [], groups: [], groupsClaim: 'groups' })));
