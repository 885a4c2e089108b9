import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { slackAppManifest } from '../../lib/slack/manifest';

describe('the Slack app manifest', () => {
  it("asks for the bot scopes the functions use and sends interactions to the stage's route", () => {
    const manifest = parse(slackAppManifest('https://abc123.execute-api.eu-west-1.amazonaws.com/')) as Record<string, Record<string, Record<string, unknown>>>;

    expect(manifest.oauth_config?.scopes).toEqual({ bot: ['chat:write', 'usergroups:read'] });
    expect(manifest.settings?.interactivity).toEqual({ is_enabled: true, request_url: 'https://abc123.execute-api.eu-west-1.amazonaws.com/chat/slack/interactions' });
    expect(manifest.features?.bot_user).toMatchObject({ display_name: 'vpce-gatekeeper' });
    expect(manifest.settings).toMatchObject({ socket_mode_enabled: false, token_rotation_enabled: false });
  });
});
