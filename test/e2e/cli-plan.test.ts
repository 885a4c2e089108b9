import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_APPROVER, LOCAL_VIEWER } from './approvals-client';
import { startLocalStack, type LocalStack } from './local-stack';

// `vpce-gatekeeper policy plan`, and `policy put` showing the plan and asking
// before it saves when a person runs it in a terminal (a pseudo-terminal here, through script(1)).

const ALLOWED = '111122223333';
const STRANGER = '999988887777';

let stack: LocalStack;
let tempDir: string;
let file: string;

beforeAll(async () => {
  stack = await startLocalStack({ policy: { default: { allow: [{ account: ALLOWED, label: 'acme-prod' }] } } });
  tempDir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-cli-plan-'));
  file = join(tempDir, 'policies.yaml');
  await writeFile(file, `default:\n  allow: [{account: "${ALLOWED}", label: acme-prod}, {account: "${STRANGER}", label: new-customer}]\n`);
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

function envFor(credentials: { accessKeyId: string; secretAccessKey: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey };
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN']) delete env[name];
  return env;
}

function cli(credentials: { accessKeyId: string; secretAccessKey: string }, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/vpce-gatekeeper.mjs', '--api', stack.baseUrl, ...args], { env: envFor(credentials) }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Runs the CLI on a pseudo-terminal, typing `answer` once it asks. */
function inTerminal(answer: string, ...args: string[]): Promise<Run> {
  const command = [process.execPath, 'bin/vpce-gatekeeper.mjs', '--api', stack.baseUrl, ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: envFor(LOCAL_APPROVER) });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('[y/N]') && !child.stdin.writableEnded) child.stdin.end(`${answer}\n`);
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: output, stderr: '' }));
  });
}

async function heldEndpoint(): Promise<{ serviceId: string; endpointId: string }> {
  const { serviceId } = await stack.createService();
  const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
  await stack.waitFor(async () => (await stack.record(serviceId, endpointId))?.decision?.outcome === 'hold' && (await stack.idle()));
  return { serviceId, endpointId };
}

async function defaultVersion(): Promise<number> {
  const got = await cli(LOCAL_VIEWER, '--json', 'policy', 'get', 'default');
  return (JSON.parse(got.stdout) as { version: number }).version;
}

describe('vpce-gatekeeper policy plan and put', () => {
  it('plans a policy file as a table, or as JSON, for an approver', async () => {
    const { serviceId, endpointId } = await heldEndpoint();

    const human = await cli(LOCAL_APPROVER, 'policy', 'plan', file);
    const asJson = await cli(LOCAL_APPROVER, '--json', 'policy', 'plan', file);

    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^policy default \(replacing version \d+\): 1 to accept, 0 to reject, 0 to revoke, 0 held/m);
    expect(human.stdout).toMatch(/^EFFECT\s+SERVICE\s+ENDPOINT\s+ACCOUNT\s+STATE\s+NOW\s+PLANNED\s+WHY$/m);
    expect(human.stdout).toContain(`accept  ${serviceId}  ${endpointId}  ${STRANGER}`);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ plans: [{ policyId: 'default', changes: [{ endpointId, effect: 'accept', planned: { rule: 'allow:new-customer' } }] }] });
  });

  it('tells a viewer that only approvers plan', async () => {
    const refused = await cli(LOCAL_VIEWER, 'policy', 'plan', file);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/403 Forbidden: .*local-viewer is not an approver: only approvers may .*plan/);
  });

  it('in a terminal, shows the plan before saving and saves nothing on no', async () => {
    await heldEndpoint();
    const before = await defaultVersion();

    const declined = await inTerminal('n', 'policy', 'put', file);

    expect(declined.stdout).toMatch(/^policy default \(replacing version \d+\): 2 to accept/m);
    expect(declined.stdout).toContain('save default? [y/N]');
    expect(declined.stdout).toContain('nothing saved');
    expect(declined.code).toBe(1);
    expect(await defaultVersion()).toBe(before);

    const accepted = await inTerminal('y', 'policy', 'put', file);

    expect(accepted.code).toBe(0);
    expect(accepted.stdout).toMatch(new RegExp(`default: version ${before + 1} written`));
  });

  it('without a terminal, refuses to save unless --yes, and with --yes prints the plan it saved against', async () => {
    const before = await defaultVersion();
    const another = join(tempDir, 'another.yaml');
    await writeFile(another, `default:\n  allow: [{account: "${ALLOWED}", label: acme-prod}]\n  onUnmatched: reject\n`);

    const refused = await cli(LOCAL_APPROVER, 'policy', 'put', another);
    const afterRefusal = await defaultVersion();
    const put = await cli(LOCAL_APPROVER, 'policy', 'put', another, '--yes');

    expect(refused).toMatchObject({ code: 2, stderr: expect.stringContaining('there is no terminal to ask on') });
    expect(refused.stderr).toContain('policy put FILE --yes');
    expect(afterRefusal).toBe(before);
    expect(put.code).toBe(0);
    expect(put.stderr).toMatch(new RegExp(`^policy default \\(replacing version ${before}\\): `, 'm'));
    expect(put.stdout).not.toContain('[y/N]');
    expect(await defaultVersion()).toBe(before + 1);
  });

  it('names a service id this stage does not manage, asks about it in a terminal, and elsewhere needs --force', async () => {
    const { serviceId } = await stack.createService();
    const typo = `${serviceId.slice(0, -1)}${serviceId.endsWith('0') ? '1' : '0'}`;
    const typoFile = join(tempDir, 'typo.yaml');
    await writeFile(typoFile, `${typo}:\n  allow: [{account: "${ALLOWED}"}]\n`);

    const refused = await cli(LOCAL_APPROVER, 'policy', 'put', typoFile, '--yes');
    const declined = await inTerminal('n', 'policy', 'put', typoFile);
    const forced = await cli(LOCAL_APPROVER, 'policy', 'put', typoFile, '--yes', '--force');

    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining(`${typo} is not an endpoint service this stage manages (did you mean ${serviceId}?)`) });
    expect(refused.stderr).toContain('pass --force');
    expect(declined.stdout).toContain(`although ${typo} would never apply? [y/N]`);
    expect(declined.stdout).toContain('nothing saved');
    expect(forced).toMatchObject({ code: 0, stdout: expect.stringContaining(`${typo}: version 1 written; no managed service uses it`) });
  });
});
