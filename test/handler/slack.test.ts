import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slackSignature } from '../../lib/slack/signature';
import { answerSlackApi, SLACK_API_PATH } from '../../local/slack/web-api';
import { SlackWorkspace } from '../../local/slack/workspace';

// The Slack functions fed real-shaped events from events/, as Lambda hands them over: the
// interaction behind API Gateway (its form body base64-encoded), and the decisions topic's
// SNS envelope. Their secrets come from Parameter Store (mocked client), Slack is the
// local simulator over HTTP, the table is the test's dynalite.

const SIGNING_SECRET = 'handler-test-signing-secret';
const BOT_TOKEN = 'xoxb-local';

const workspace = new SlackWorkspace();
const slack = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const answer = answerSlackApi(workspace, { method: request.method ?? 'POST', path: url.pathname, query: url.search.slice(1), headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
    response.writeHead(answer.status, answer.headers);
    response.end(answer.body);
  });
});
const ssm = mockClient(SSMClient);
const parameterReads: string[] = [];

type Handler = (event: unknown, context: Context) => Promise<unknown>;
let interactions: Handler;
let notifier: Handler;

beforeAll(async () => {
  await new Promise<void>((resolve) => slack.listen(0, '127.0.0.1', resolve));
  ssm.on(GetParameterCommand).callsFake((input: { Name: string; WithDecryption?: boolean }) => {
    parameterReads.push(input.Name);
    if (!input.WithDecryption) throw new Error('read without decryption');
    return { Parameter: { Name: input.Name, Type: 'SecureString', Value: input.Name.endsWith('signing-secret') ? SIGNING_SECRET : BOT_TOKEN } };
  });
  Object.assign(process.env, {
    SLACK_CHANNEL: 'C0LOCALAPPROVALS',
    SLACK_APPROVERS: 'U0APPROVER',
    SLACK_BOT_TOKEN_PARAMETER: '/vpce-gatekeeper/test/slack-bot-token',
    SLACK_SIGNING_SECRET_PARAMETER: '/vpce-gatekeeper/test/slack-signing-secret',
    SLACK_API_URL: `http://127.0.0.1:${(slack.address() as AddressInfo).port}${SLACK_API_PATH}`,
  });
  interactions = (await import('../../handlers/slack-interactions')).handler as unknown as Handler;
  notifier = (await import('../../handlers/slack-notifier')).handler as unknown as Handler;
});

afterAll(async () => {
  ssm.restore();
  await new Promise((resolve) => slack.close(resolve));
});

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8')) as T;
const context = { functionName: 'slack-test', awsRequestId: 'test' } as Context;

interface HttpEvent {
  headers: Record<string, string>;
  body: string;
  isBase64Encoded: boolean;
}

/** The fixture's interaction, signed `secondsAgo` with `secret` over the bytes Slack sent (the body API Gateway base64-encoded). */
function signedInteraction(secret: string, secondsAgo = 0): HttpEvent {
  const event = fixture<HttpEvent>('http-api-slack-interaction.json');
  const timestamp = String(Math.floor(Date.now() / 1000) - secondsAgo);
  const raw = Buffer.from(event.body, 'base64');
  return { ...event, headers: { ...event.headers, 'x-slack-request-timestamp': timestamp, 'x-slack-signature': slackSignature(secret, timestamp, raw) } };
}

describe('the Slack interactions handler', () => {
  it("checks the signature over the base64-decoded body, with the secret read once from Parameter Store, and answers the form's errors", async () => {
    const first = (await interactions(signedInteraction(SIGNING_SECRET), context)) as { statusCode: number; body: string };
    // Another request (sent a second earlier): the same one again would be a replay.
    const second = (await interactions(signedInteraction(SIGNING_SECRET, 1), context)) as { statusCode: number; body: string };

    // The fixture's user is not in slackApprovers: refused in the form, nothing decided.
    expect(first.statusCode).toBe(200);
    expect(JSON.parse(first.body)).toEqual({ response_action: 'errors', errors: { reason: expect.stringContaining('You are not an approver') } });
    expect(second.statusCode).toBe(200);
    expect(parameterReads.filter((name) => name.endsWith('signing-secret'))).toEqual(['/vpce-gatekeeper/test/slack-signing-secret']);
  });

  it('answers 401 to the fixture signed with another secret, or not signed at all', async () => {
    const forged = (await interactions(signedInteraction('another-secret'), context)) as { statusCode: number; body: string };
    const unsigned = fixture<HttpEvent>('http-api-slack-interaction.json');
    delete unsigned.headers['x-slack-signature'];
    const missing = (await interactions(unsigned, context)) as { statusCode: number };

    expect(forged.statusCode).toBe(401);
    expect(JSON.parse(forged.body)).toEqual({ error: { code: 'Unauthorized', message: 'not a request signed by Slack: X-Slack-Signature does not match the body' } });
    expect(missing.statusCode).toBe(401);
  });
});

describe('the Slack notifier', () => {
  it("posts the fixture's approval-needed request to the channel, with the bot token from Parameter Store", async () => {
    await notifier(fixture('sns-slack-approval-needed.json'), context);
    await notifier(fixture('sns-slack-approval-needed.json'), context);

    const messages = workspace.channelMessages();
    expect(messages).toHaveLength(1);
    expect(messages[0]?.text).toBe('Approval needed: account 999988887777 to vpce-svc-0123456789abcdef0 (endpoint vpce-0a1b2c3d4e5f60718, eu-west-1)');
    expect(parameterReads).toContain('/vpce-gatekeeper/test/slack-bot-token');
  });

  it('ignores a message that is not a connection event, and fails on an event that is not SNS', async () => {
    const event = fixture<{ Records: { Sns: { Message: string } }[] }>('sns-slack-approval-needed.json');
    const [record] = event.Records;
    if (record) record.Sns.Message = 'not json';

    await expect(notifier(event, context)).resolves.toBeUndefined();
    await expect(notifier({ Records: [] }, context)).rejects.toThrow(/not an SNS event/);
  });
});
