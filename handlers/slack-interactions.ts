import { config, slackSettings } from '../lib/config';
import { serveRoutes } from '../lib/http/router';
import { middyfy } from '../lib/lambda';
import { slackRoutes } from '../lib/slack/routes';

// Fail at cold start, naming the variable, rather than on Slack's first request.
config();
slackSettings();

export const routes = slackRoutes;

/** Slack's interactions (button clicks, modal submissions) behind API Gateway, outside IAM and JWT: Slack signs them. */
export const handler = middyfy(serveRoutes(routes, () => ({ principals: [], groups: [], groupsClaim: 'groups' })));
