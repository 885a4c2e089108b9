import { readSecureParameter } from '../aws/parameter-store';
import { slackSettings } from '../config';
import { SlackWebApi } from './web-api';

/**
 * The Slack app as this container knows it: its settings, and its secrets read
 * from Parameter Store once per container (a failed read is tried again on the
 * next use, not remembered). The secrets live in memory only.
 */

let botToken: Promise<string> | undefined;
let signingSecret: Promise<string> | undefined;
let api: SlackWebApi | undefined;

/** The bot token (xoxb-…), from the SecureString named by SLACK_BOT_TOKEN_PARAMETER. */
export function slackBotToken(): Promise<string> {
  botToken ??= readSecureParameter(slackSettings().botTokenParameter).catch((error: unknown) => {
    botToken = undefined;
    throw error;
  });
  return botToken;
}

/** The signing secret, from the SecureString named by SLACK_SIGNING_SECRET_PARAMETER. */
export function slackSigningSecret(): Promise<string> {
  signingSecret ??= readSecureParameter(slackSettings().signingSecretParameter).catch((error: unknown) => {
    signingSecret = undefined;
    throw error;
  });
  return signingSecret;
}

/** The Web API client, with the bot token. */
export function slackApi(): SlackWebApi {
  api ??= new SlackWebApi({ apiUrl: slackSettings().apiUrl, token: slackBotToken });
  return api;
}
