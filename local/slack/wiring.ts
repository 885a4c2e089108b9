import { SLACK_EVENT_TYPES } from '../../lib/slack/message-card';
import { LocalApiGateway } from '../lambda/api-gateway';
import { AsyncFunction } from '../lambda/async-invocation';
import { DEFAULT_FUNCTION_TIMEOUT_MS } from '../lambda/lambda-runtime';
import type { LocalSsm } from '../aws/ssm';
import type { OutboundSns } from '../aws/sns-outbound';
import type { SlackPlane } from '../control/slack-routes';
import { SLACK_API_PATH } from './web-api';
import { LOCAL_SLACK, LOCAL_SLACK_APPROVERS, SlackWorkspace } from './workspace';

/** The SSM SecureString parameters holding the local app's secrets (slackBotTokenParameter, slackSigningSecretParameter). */
export const LOCAL_SLACK_PARAMETERS = {
  botToken: '/vpce-gatekeeper/local/slack-bot-token',
  signingSecret: '/vpce-gatekeeper/local/slack-signing-secret',
} as const;

const NOTIFIER_FUNCTION_NAME = 'vpce-gatekeeper-local-slack-notifier';
const INTERACTIONS_FUNCTION_NAME = 'vpce-gatekeeper-local-slack-interactions';

/**
 * The Slack functions' environment, as serverless.yml gives it to them: the
 * channel, the approvers, where the Web API is, and the names of the parameters
 * holding the secrets. The secrets themselves go into Parameter Store only.
 */
export function slackEnvironment(baseUrl: string): Record<string, string> {
  return {
    SLACK_CHANNEL: LOCAL_SLACK.channel.id,
    SLACK_APPROVERS: LOCAL_SLACK_APPROVERS,
    SLACK_BOT_TOKEN_PARAMETER: LOCAL_SLACK_PARAMETERS.botToken,
    SLACK_SIGNING_SECRET_PARAMETER: LOCAL_SLACK_PARAMETERS.signingSecret,
    SLACK_API_URL: `${baseUrl}${SLACK_API_PATH}`,
  };
}

/** What an operator does with `aws ssm put-parameter --type SecureString` after creating the app. */
export function storeSlackSecrets(ssm: LocalSsm): void {
  ssm.put({ name: LOCAL_SLACK_PARAMETERS.botToken, type: 'SecureString', value: LOCAL_SLACK.botToken });
  ssm.put({ name: LOCAL_SLACK_PARAMETERS.signingSecret, type: 'SecureString', value: LOCAL_SLACK.signingSecret });
}

/**
 * The Slack side of the stack: the simulated workspace, the notifier subscribed
 * to the decisions topic with the deployed filter policy, and the interactions
 * function behind its public route. Imported only after the environment is set.
 */
export async function startSlack(parts: {
  baseUrl: string;
  outbound: OutboundSns;
  topicArn: string;
  functionTimeoutMs?: number;
}): Promise<{ plane: SlackPlane; api: LocalApiGateway }> {
  const notifierModule = await import('../../handlers/slack-notifier');
  const interactionsModule = await import('../../handlers/slack-interactions');
  const notifier = new AsyncFunction({
    functionName: NOTIFIER_FUNCTION_NAME,
    handler: notifierModule.handler,
    timeoutMs: parts.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS,
  });
  parts.outbound.subscribe({ topicArn: parts.topicArn, filterPolicy: { eventType: [...SLACK_EVENT_TYPES] }, invoke: (event) => notifier.invoke(event) });
  const api = new LocalApiGateway({ routes: interactionsModule.routes, handler: interactionsModule.handler, functionName: INTERACTIONS_FUNCTION_NAME });
  return { plane: { workspace: new SlackWorkspace(), interactionsUrl: `${parts.baseUrl}/chat/slack/interactions`, notifier }, api };
}
