import { config, slackSettings } from '../lib/config';
import { serveRoutes } from '../lib/http/router';
import { lambdaHandler } from '../lib/lambda';
import { slackRoutes } from '../lib/slack/routes';

// Fail at cold start, naming the variable, rather than on Slack's first request.
config();
slackSettings();

export const routes = slackRoutes;

/** Slack's interactions (button clicks, modal submissions) behind API Gateway, outside IAM and JWT: Slack signs them. */
export const handler = lambdaHandler(serveRoutes(routes, () => ({ principals: [], groups: [], groupsClaim: 'groups' })));
