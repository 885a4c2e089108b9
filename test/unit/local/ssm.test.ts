import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalSsm } from '../../../local/aws/ssm';

// The local Parameter Store, driven by the real SSM client over HTTP: what the Slack functions read their secrets from.

const PRINCIPAL = { accessKeyId: 'local', secretAccessKey: 'local', userArn: 'arn:aws:sts::000000000000:assumed-role/x/y', userId: 'AROAX:y', accountId: '000000000000' };
// A clock that stands still: the throughput is a matter of counting, not of how fast this machine is.
let ssm = new LocalSsm([PRINCIPAL], () => 0);
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const answer = ssm.answer({ method: request.method ?? 'POST', url: request.url ?? '/', rawHeaders: request.rawHeaders, body: Buffer.concat(chunks) });
    response.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': answer.requestId });
    response.end(answer.body);
  });
});
let endpoint = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/aws/ssm`;
  ssm.put({ name: '/app/slack-bot-token', type: 'SecureString', value: 'xoxb-secret' });
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const client = (credentials = { accessKeyId: 'local', secretAccessKey: 'local' }) => new SSMClient({ endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });

describe('the local SSM Parameter Store', () => {
  it('returns a SecureString decrypted only when asked WithDecryption', async () => {
    const decrypted = await client().send(new GetParameterCommand({ Name: '/app/slack-bot-token', WithDecryption: true }));
    const encrypted = await client().send(new GetParameterCommand({ Name: '/app/slack-bot-token' }));

    expect(decrypted.Parameter).toMatchObject({ Name: '/app/slack-bot-token', Type: 'SecureString', Value: 'xoxb-secret', Version: 1, ARN: 'arn:aws:ssm:us-east-1:000000000000:parameter/app/slack-bot-token' });
    expect(decrypted.Parameter?.LastModifiedDate).toBeInstanceOf(Date);
    expect(encrypted.Parameter?.Value).not.toBe('xoxb-secret');
  });

  it('answers ParameterNotFound for a name it does not hold', async () => {
    await expect(client().send(new GetParameterCommand({ Name: '/app/nothing', WithDecryption: true }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
  });

  it('refuses a request signed with a secret it does not know, or an unknown key', async () => {
    await expect(client({ accessKeyId: 'local', secretAccessKey: 'wrong' }).send(new GetParameterCommand({ Name: '/app/slack-bot-token' }))).rejects.toMatchObject({
      name: 'InvalidSignatureException',
    });
    await expect(client({ accessKeyId: 'AKIAOTHER', secretAccessKey: 'x' }).send(new GetParameterCommand({ Name: '/app/slack-bot-token' }))).rejects.toMatchObject({
      name: 'UnrecognizedClientException',
    });
  });

  it('throttles beyond the standard throughput of 40 a second', async () => {
    ssm = new LocalSsm([PRINCIPAL], () => 0);
    ssm.put({ name: '/app/slack-bot-token', type: 'SecureString', value: 'xoxb-secret' });

    const results = await Promise.allSettled(Array.from({ length: 45 }, () => client().send(new GetParameterCommand({ Name: '/app/slack-bot-token' }))));
    const throttled = results.filter((result) => result.status === 'rejected' && (result.reason as Error).name === 'ThrottlingException');

    // With the clock standing still, no token comes back: the 41st call and after are refused.
    expect(throttled).toHaveLength(5);
  });
});
