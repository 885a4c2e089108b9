import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_APPROVER, LOCAL_APPROVER_ARN, LOCAL_VIEWER, signedClient } from './approvals-client';
import { HOSTILE_OU_NAME, heldBelowOu } from './hostile-ou';
import { startLocalStack, type LocalStack } from './local-stack';

// `npx vpce-gatekeeper` (bin/vpce-gatekeeper.mjs) against the local stack, signing
// with whatever the default credential chain finds: here, the environment.

const STRANGER = '999988887777';

let stack: LocalStack;
let tempDir: string;

beforeAll(async () => {
  stack = await startLocalStack({ policy: { default: { allow: [{ account: '111122223333', label: 'acme-prod' }] } } });
  tempDir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-cli-'));
});

afterAll(async () => {
  await stack?.stop();
  await rm(tempDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(credentials: { accessKeyId: string; secretAccessKey: string }, ...args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey };
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN']) delete env[name];
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/vpce-gatekeeper.mjs', '--api', stack.baseUrl, ...args], { env }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function heldEndpoint(): Promise<{ serviceId: string; endpointId: string }> {
  const { serviceId } = await stack.createService();
  const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
  await stack.waitFor(async () => (await stack.outbox()).some((m) => (m.message as { endpointId?: string }).endpointId === endpointId));
  await stack.waitFor(async () => {
    const { deliveries } = await stack.health();
    return deliveries.running === 0 && deliveries.scheduled === 0;
  });
  return { serviceId, endpointId };
}

describe('npx vpce-gatekeeper', () => {
  it('shows the queue as a table, accepts with a reason, and shows the record as JSON', async () => {
    const { serviceId, endpointId } = await heldEndpoint();

    const pending = await cli(LOCAL_VIEWER, 'pending');
    const accepted = await cli(LOCAL_APPROVER, 'accept', serviceId, endpointId, '--reason', 'ticket SEC-7');
    const shown = await cli(LOCAL_VIEWER, '--json', 'show', serviceId, endpointId);

    expect(pending.code).toBe(0);
    expect(pending.stdout).toMatch(/^SERVICE\s+SERVICE IN\s+ENDPOINT\s+ACCOUNT\s+REGION\s+SINCE\s+WHY$/m);
    expect(pending.stdout).toContain(`${serviceId}  000000000000/us-east-1  ${endpointId}  ${STRANGER}`);
    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toContain(`accepted ${endpointId}: now pending`);
    expect(JSON.parse(shown.stdout)).toMatchObject({ endpointId, decision: { outcome: 'accept', reason: 'ticket SEC-7', decidedBy: LOCAL_APPROVER_ARN } });
  });

  it('revokes an admitted connection with a reason, where reject is refused and points to revoke', async () => {
    const { serviceId, endpointId } = await heldEndpoint();
    expect((await cli(LOCAL_APPROVER, 'accept', serviceId, endpointId, '--reason', 'ticket SEC-8')).code).toBe(0);

    const rejected = await cli(LOCAL_APPROVER, 'reject', serviceId, endpointId, '--reason', 'too late for a reject');
    const revoked = await cli(LOCAL_APPROVER, 'revoke', serviceId, endpointId, '--reason', 'contract ended');
    const shown = await cli(LOCAL_VIEWER, '--json', 'show', serviceId, endpointId);

    expect(rejected).toMatchObject({ code: 1, stderr: expect.stringMatching(/409 Conflict: .*revoke/) });
    expect(revoked).toMatchObject({ code: 0, stdout: expect.stringContaining(`revoked ${endpointId}: now rejected`) });
    expect(JSON.parse(shown.stdout)).toMatchObject({
      state: 'rejected',
      decision: { outcome: 'reject', reason: 'contract ended', decidedBy: LOCAL_APPROVER_ARN },
    });
  });

  it('exits non-zero with the API error when the caller may not, or the state does not allow it', async () => {
    const { serviceId, endpointId } = await heldEndpoint();

    const asViewer = await cli(LOCAL_VIEWER, 'reject', serviceId, endpointId, '--reason', 'no');
    const withoutReason = await cli(LOCAL_APPROVER, 'reject', serviceId, endpointId);
    const rejected = await cli(LOCAL_APPROVER, 'reject', serviceId, endpointId, '--reason', 'unknown customer');
    const again = await cli(LOCAL_APPROVER, 'accept', serviceId, endpointId, '--reason', 'changed my mind');
    const unreachable = await cli(LOCAL_APPROVER, '--api', 'http://127.0.0.1:9', 'pending');

    expect(asViewer).toMatchObject({ code: 1, stderr: expect.stringContaining('403 Forbidden: arn:aws:iam::000000000000:user/local-viewer is not an approver') });
    expect(withoutReason).toMatchObject({ code: 2, stderr: expect.stringContaining('needs --reason') });
    expect(rejected.code).toBe(0);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining('409 Conflict') });
    expect(unreachable).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot call http://127.0.0.1:9') });
  });

  it('puts a policy file over the current version, reads it back and evaluates against it', async () => {
    const file = join(tempDir, 'policies.yaml');
    await writeFile(file, `default:\n  allow: [{account: "${STRANGER}", label: new-customer}]\n`);

    const put = await cli(LOCAL_APPROVER, 'policy', 'put', file, '--yes');
    const got = await cli(LOCAL_VIEWER, '--json', 'policy', 'get', 'default');
    const evaluated = await cli(LOCAL_VIEWER, 'policy', 'evaluate', 'default', '--account', STRANGER, '--consumer-region', 'eu-west-1');
    const stale = await cli(LOCAL_APPROVER, 'policy', 'put', file, '--if-match', '1', '--yes');

    expect(put).toMatchObject({ code: 0, stdout: expect.stringMatching(/^default: version \d+ written; it decides new requests from now on/m) });
    expect(JSON.parse(got.stdout)).toMatchObject({ policyId: 'default', createdBy: LOCAL_APPROVER_ARN, policy: { allow: [{ account: STRANGER }] } });
    expect(evaluated).toMatchObject({ code: 0, stdout: expect.stringContaining(`accept (allow:new-customer`) });
    expect(stale).toMatchObject({ code: 1, stderr: expect.stringContaining('412 PreconditionFailed') });
  });

  it.each([
    ['the placeholders of a copied example', 'vpce-svc-…', 'vpce-…', ['serviceId', 'endpointId']],
    ['a space', 'vpce-svc 0123', 'vpce-0123456789abcdef0', ['serviceId']],
    ['non-ASCII letters', 'vpce-svc-0123456789abcdef0', 'vpcé-0123', ['endpointId']],
  ])('signs ids with %s so that the API answers 400 naming the bad id, not a signature error', async (_, serviceId, endpointId, badIds) => {
    const shown = await cli(LOCAL_VIEWER, 'show', serviceId, endpointId);
    const accepted = await cli(LOCAL_APPROVER, 'accept', serviceId, endpointId, '--reason', 'ticket SEC-9');

    for (const run of [shown, accepted]) {
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^vpce-gatekeeper: 400 InvalidRequest: invalid path: /);
      for (const id of badIds) expect(run.stderr).toContain(`${id}: must be`);
    }
  });

  it('refuses to evaluate without a consumer region rather than assume one', async () => {
    const evaluated = await cli(LOCAL_VIEWER, 'policy', 'evaluate', 'default', '--account', STRANGER);

    expect(evaluated).toMatchObject({ code: 2, stderr: expect.stringContaining('policy evaluate needs --consumer-region REGION') });
  });

  it('escapes every control and bidi character it prints, whoever wrote it: here an OU name from Organizations', async () => {
    const { serviceId, endpointId } = await heldBelowOu(stack, STRANGER);

    const pending = await cli(LOCAL_VIEWER, 'pending', '--service', serviceId);
    const shown = await cli(LOCAL_VIEWER, 'show', serviceId, endpointId);
    const asJson = await cli(LOCAL_VIEWER, '--json', 'pending', '--service', serviceId);

    for (const run of [pending, shown, asJson]) {
      expect(run.code).toBe(0);
      expect(run.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    }
    expect(pending.stdout).toContain('Sandbox\\u001B[1A\\u001B[2K\\u001B]0;pwned\\u0007\\u202Eevil\\u009B');
    expect(shown.stdout).toContain('\\u202Eevil');
    // Escaped as JSON escapes, so the JSON output still parses to what the API said.
    const parsed = JSON.parse(asJson.stdout) as { connections: { decision: { reason: string } }[] };
    expect(parsed.connections[0]?.decision.reason).toContain(HOSTILE_OU_NAME);
  });

  it('refuses a label with control or bidi characters, in the file and at the API, naming the field', async () => {
    const file = join(tempDir, 'label.yaml');
    await writeFile(file, 'default:\n  allow:\n    - account: "111122223333"\n      label: "acme\\e[2K\\u202Eprod"\n');

    const planned = await cli(LOCAL_APPROVER, 'policy', 'plan', file);
    const put = await signedClient(stack.baseUrl, LOCAL_APPROVER).request('PUT', '/policies/default', {
      body: { allow: [{ account: '111122223333', label: 'acme\u001b[2K\u202Eprod' }] },
      headers: { 'if-match': '*' },
    });

    expect(planned).toMatchObject({ code: 1, stderr: expect.stringContaining('allow[0].label: must be one line without control characters') });
    expect(put.status).toBe(400);
    expect(JSON.stringify(put.body)).toContain('allow[0].label: must be one line without control characters, bidirectional-text controls');
  });

  it('says to quote an account id that YAML read as a number, showing what it read', async () => {
    const file = join(tempDir, 'unquoted.yaml');
    await writeFile(file, 'default:\n  allow:\n    - account: 012345678901\n');

    const planned = await cli(LOCAL_APPROVER, 'policy', 'plan', file);

    expect(planned.code).toBe(1);
    expect(planned.stderr).toContain('allow[0].account: the account id 012345678901 is not in quotes, so YAML reads it as the number 12345678901: write account: "012345678901"');
  });

  it('answers a malformed command line with a plain usage error and exit code 2', async () => {
    const unknownOption = await cli(LOCAL_VIEWER, 'pending', '--servce', 'vpce-svc-0123456789abcdef0');
    const missingValue = await cli(LOCAL_VIEWER, 'accept', 'vpce-svc-0123456789abcdef0', 'vpce-0123456789abcdef0', '--reason');
    const unknownCommand = await cli(LOCAL_VIEWER, 'pendng');

    expect(unknownOption).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown option --servce (did you mean --service?)') });
    expect(missingValue).toMatchObject({ code: 2, stderr: expect.stringContaining('--reason needs a value') });
    expect(unknownCommand).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'pendng' (did you mean 'pending'?)") });
    for (const run of [unknownOption, missingValue]) expect(run.stderr).not.toContain('To specify a positional argument');
  });

  it('names the variables to set when it finds no AWS credentials, and needs no login on an IAM stage', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: tempDir, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: join(tempDir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(tempDir, 'none') };
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_WEB_IDENTITY_TOKEN_FILE']) delete env[name];
    const run = (...args: string[]) =>
      new Promise<Run>((resolve) => {
        execFile(process.execPath, ['bin/vpce-gatekeeper.mjs', '--api', stack.baseUrl, ...args], { env }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
      });

    const pending = await run('pending');
    const login = await run('login', '--no-browser');

    expect(pending.code).toBe(1);
    expect(pending.stderr).toContain('no AWS credentials found');
    expect(pending.stderr).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.*AWS_SESSION_TOKEN.*AWS_PROFILE/);
    expect(login).toMatchObject({ code: 1, stderr: expect.stringContaining('does not sign in with SSO') });
  });

  it('packs into a tarball that runs with node alone, outside the checkout, and holds nothing else', async () => {
    const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
    const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', tempDir], { cwd: repo, encoding: 'utf8' }).trim().split('\n').at(-1) ?? '';
    const tarball = join(tempDir, packed);
    const contents = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').sort();
    execFileSync('tar', ['-xzf', tarball, '-C', tempDir]);

    const pending = await new Promise<Run>((done) => {
      const env: NodeJS.ProcessEnv = { ...process.env, AWS_ACCESS_KEY_ID: LOCAL_VIEWER.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_VIEWER.secretAccessKey };
      for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'NODE_PATH']) delete env[name];
      execFile(process.execPath, [join(tempDir, 'package/bin/vpce-gatekeeper.mjs'), '--api', stack.baseUrl, 'pending'], { cwd: tempDir, env }, (error, stdout, stderr) =>
        done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

    expect(contents).toEqual([
      'package/README.md',
      'package/bin/vpce-gatekeeper.mjs',
      'package/dist/vpce-gatekeeper.cjs',
      'package/examples/policies.yaml',
      'package/package.json',
    ]);
    expect(pending).toMatchObject({ code: 0, stderr: '' });
    expect(pending.stdout).toMatch(/^SERVICE\s+SERVICE IN\s+ENDPOINT|^nothing is waiting for an approver$/m);
  });
});
