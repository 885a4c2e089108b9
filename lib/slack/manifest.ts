/**
 * The Slack app this stack talks to, as a Slack app manifest: what docs/slack.md and
 * the console's Slack page show, with the stage's interactivity request URL filled in.
 * Pure and free of Node: the console bundles it.
 */

/** Where Slack sends clicks and modal submissions, under the API's URL. */
export const SLACK_INTERACTIONS_PATH = '/chat/slack/interactions';

/**
 * The bot token's scopes: chat:write (post and update the approval messages, show
 * ephemeral replies) and usergroups:read (slackApprovers may name a user group).
 * chat:write.public as well lets it post to a public channel without being invited.
 */
export const SLACK_BOT_SCOPES = ['chat:write', 'usergroups:read'] as const;

/** The app manifest (YAML), for Slack's "Create an app from a manifest". */
export function slackAppManifest(apiUrl: string, appName = 'vpce-gatekeeper'): string {
  const requestUrl = `${apiUrl.replace(/\/+$/, '')}${SLACK_INTERACTIONS_PATH}`;
  return [
    'display_information:',
    `  name: ${appName}`,
    '  description: Accept or reject PrivateLink endpoint connections held for approval',
    '  background_color: "#232f3e"',
    'features:',
    '  bot_user:',
    `    display_name: ${appName}`,
    '    always_online: false',
    'oauth_config:',
    '  scopes:',
    '    bot:',
    ...SLACK_BOT_SCOPES.map((scope) => `      - ${scope}`),
    'settings:',
    '  interactivity:',
    '    is_enabled: true',
    `    request_url: ${requestUrl}`,
    '  org_deploy_enabled: false',
    '  socket_mode_enabled: false',
    '  token_rotation_enabled: false',
    '',
  ].join('\n');
}
