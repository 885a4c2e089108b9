import { useState } from 'preact/hooks';
import { SLACK_BOT_SCOPES, SLACK_INTERACTIONS_PATH, slackAppManifest } from '../../lib/slack/manifest';
import { apiBase, type ConsoleSettings } from './api';
import { Note } from './ui';

/** The stage parameters that turn Slack approvals on (docs/slack.md), and what each holds. */
const PARAMETERS: [string, string][] = [
  ['slackChannel', 'the id of the channel requests are posted to (C…; in Slack, the channel details show it)'],
  ['slackBotTokenParameter', "the name of the SSM SecureString holding the app's bot token (xoxb-…)"],
  ['slackSigningSecretParameter', "the name of the SSM SecureString holding the app's signing secret"],
  ['slackApprovers', 'who may accept and reject from Slack: user ids (U…) and user group ids (S…), comma-separated'],
];

/**
 * How to connect this stage to Slack: whether it is on, the app manifest with this
 * stage's interactivity URL, the scopes, and the parameters and commands of a deploy.
 */
export function SlackSetup({ settings }: { settings: ConsoleSettings }) {
  const manifest = slackAppManifest(apiBase);
  const [copied, setCopied] = useState(false);
  const copy = () => {
    navigator.clipboard.writeText(manifest).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <section>
      <h1>Slack approvals</h1>
      {settings.slackChannel ? (
        <Note kind="ok">
          On for this stage: held requests are posted to channel <code>{settings.slackChannel}</code>, with Accept and Reject buttons.
        </Note>
      ) : (
        <Note>Off for this stage. Set it up as below, then deploy with the four parameters.</Note>
      )}
      <div class="card">
        <h2>1. Create the Slack app from this manifest</h2>
        <p class="hint">
          In Slack: <em>Create an app</em>, <em>From an app manifest</em>, pick the workspace, paste. Its interactivity request URL is this
          stage's <code class="slack-url">{`${apiBase}${SLACK_INTERACTIONS_PATH}`}</code>; its bot scopes are {SLACK_BOT_SCOPES.map((scope, i) => <>{i ? ', ' : ''}<code>{scope}</code></>)} (add{' '}
          <code>chat:write.public</code> to post to a public channel without inviting the app).
        </p>
        <pre class="diff" data-testid="slack-manifest">{manifest}</pre>
        <div class="actions">
          <button onClick={copy}>{copied ? 'Copied' : 'Copy the manifest'}</button>
        </div>
      </div>
      <div class="card">
        <h2>2. Keep its secrets in Parameter Store</h2>
        <p class="hint">
          Install the app to the workspace, then store its <em>Bot User OAuth Token</em> and its <em>Signing Secret</em> (Basic Information) as
          SecureStrings. The functions read them from there, never from their environment.
        </p>
        <pre class="diff">{`read -rs TOKEN && aws ssm put-parameter --type SecureString --name /vpce-gatekeeper/STAGE/slack-bot-token --value "$TOKEN"
read -rs SECRET && aws ssm put-parameter --type SecureString --name /vpce-gatekeeper/STAGE/slack-signing-secret --value "$SECRET"`}</pre>
      </div>
      <div class="card">
        <h2>3. Deploy with the parameters</h2>
        <table class="list">
          <thead>
            <tr>
              <th>parameter</th>
              <th>what it holds</th>
            </tr>
          </thead>
          <tbody>
            {PARAMETERS.map(([name, meaning]) => (
              <tr>
                <td>
                  <code>{name}</code>
                </td>
                <td>{meaning}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <pre class="diff">{`npx serverless deploy --stage STAGE --region ${settings.region} \\
  --param="slackChannel=C0123456789" --param="slackApprovers=U0123ABCD,S0456EFGH" \\
  --param="slackBotTokenParameter=/vpce-gatekeeper/STAGE/slack-bot-token" \\
  --param="slackSigningSecretParameter=/vpce-gatekeeper/STAGE/slack-signing-secret"`}</pre>
        <p class="hint">Then invite the app to the channel (<code>/invite @vpce-gatekeeper</code>). The whole story, and what each message shows: docs/slack.md.</p>
      </div>
    </section>
  );
}
