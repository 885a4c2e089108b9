import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from './local-stack';

// `vpce-gatekeeper login` against `npm start -- --auth jwt`, driven end to end: the
// CLI prints the local issuer's sign-in URL (--no-browser), the test answers the
// issuer's page as a person would (picks a user), and follows the redirect back to
// the CLI's loopback port. Then commands run on the cached token, refresh it, and
// logout forgets it. No AWS credentials anywhere.

const STRANGER = '999988887777';

let stack: LocalStack;
let configDir: string;

beforeAll(async () => {
  stack = await startLocalStack({ auth: 'jwt', policy: { default: { allow: [{ account: '111122223333' }] } } });
  configDir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-login-'));
});

afterAll(async () => {
  await stack?.stop();
  await rm(configDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function env(): NodeJS.ProcessEnv {
  const vars: NodeJS.ProcessEnv = { ...process.env, VPCE_GATEKEEPER_CONFIG_DIR: configDir, AWS_EC2_METADATA_DISABLED: 'true' };
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) delete vars[name];
  return vars;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/vpce-gatekeeper.mjs', '--api', stack.baseUrl, ...args], { env: env() }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** `login --no-browser` running: the sign-in URL it printed, and its end. */
async function startLogin(): Promise<{ url: URL; done: Promise<Run> }> {
  const child: ChildProcess = spawn(process.execPath, ['bin/vpce-gatekeeper.mjs', '--api', stack.baseUrl, 'login', '--no-browser'], { env: env() });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
  const url = await new Promise<URL>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const printed = /(http:\/\/127\.0\.0\.1:\d+\/local\/oidc\/authorize\?\S+)/.exec(stderr)?.[1];
      if (printed && /Waiting for the browser/.test(stderr)) resolve(new URL(printed));
    });
    child.on('close', () => reject(new Error(`login ended before printing the sign-in URL:\n${stderr}`)));
  });
  return { url, done };
}

/** What a person does in the browser: open the page, pick the user, be sent back to the CLI. */
async function answerSignInPage(url: URL, user: 'local-approver' | 'local-viewer'): Promise<{ page: string; back: Response }> {
  const page = await fetch(url);
  expect(page.status).toBe(200);
  const chosen = await fetch(`${url.origin}${url.pathname}`, {
    method: 'POST',
    body: new URLSearchParams({ ...Object.fromEntries(url.searchParams), user }),
    redirect: 'manual',
  });
  expect(chosen.status).toBe(302);
  return { page: await page.text(), back: await fetch(chosen.headers.get('location') ?? '') };
}

async function tokenFile(): Promise<string> {
  const [name] = await readdir(join(configDir, 'sso'));
  return join(configDir, 'sso', name ?? '');
}

async function cached(): Promise<{ accessToken: string; refreshToken?: string; expiresAt: string }> {
  return JSON.parse(await readFile(await tokenFile(), 'utf8')) as { accessToken: string; refreshToken?: string; expiresAt: string };
}

async function heldEndpoint(): Promise<{ serviceId: string; endpointId: string }> {
  const { serviceId } = await stack.createService();
  const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
  await stack.waitFor(async () => (await stack.record(serviceId, endpointId))?.decision?.outcome === 'hold' && (await stack.idle()));
  return { serviceId, endpointId };
}

describe('vpce-gatekeeper login against an SSO stage', () => {
  it('says to sign in before anything else, naming the command', async () => {
    const pending = await cli('pending');

    expect(pending.code).toBe(1);
    expect(pending.stderr).toContain(`signs in with SSO`);
    expect(pending.stderr).toContain(`run \`vpce-gatekeeper login --api ${stack.baseUrl}\` first`);
  });

  it('signs in through the issuer on a loopback redirect with PKCE, keeps the tokens 0600, and every command uses them; refresh; logout', async () => {
    const { serviceId, endpointId } = await heldEndpoint();
    const { url, done } = await startLogin();

    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      client_id: 'vpce-gatekeeper-cli',
      response_type: 'code',
      code_challenge_method: 'S256',
      redirect_uri: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/callback$/),
    });
    const { page, back } = await answerSignInPage(url, 'local-approver');
    const login = await done;

    expect(page).toContain('local-approver');
    expect(back.status).toBe(200);
    expect(await back.text()).toContain('Signed in to vpce-gatekeeper');
    expect(login).toMatchObject({ code: 0, stdout: expect.stringContaining(`signed in to ${stack.baseUrl} as local-approver (approver)`) });
    expect((await stat(await tokenFile())).mode & 0o777).toBe(0o600);
    expect((await stat(join(configDir, 'sso'))).mode & 0o777).toBe(0o700);

    // Commands on the cached token.
    const pending = await cli('pending');
    const accepted = await cli('accept', serviceId, endpointId, '--reason', 'ticket SSO-CLI-1');
    expect(pending).toMatchObject({ code: 0, stdout: expect.stringContaining(endpointId) });
    expect(accepted).toMatchObject({ code: 0, stdout: expect.stringContaining(`accepted ${endpointId}`) });
    expect(accepted.stdout).toMatch(/decision\s+accept by local-approver \(approver\)/);

    // An expired access token is refreshed with the refresh token, which the issuer rotates.
    const before = await cached();
    await writeFile(await tokenFile(), JSON.stringify({ ...before, expiresAt: '2000-01-01T00:00:00.000Z' }));
    const afterExpiry = await cli('services');
    const refreshed = await cached();
    expect(afterExpiry.code).toBe(0);
    expect(afterExpiry.stdout).toMatch(/^SERVICE\s+SERVICE IN\s+PENDINGACCEPTANCE\s+PENDING\s+AVAILABLE\s+REJECTED\s+DELETED\s+POLICY$/m);
    expect(afterExpiry.stdout).toMatch(new RegExp(`^${serviceId}\\s.*\\sdefault v1$`, 'm'));
    expect(refreshed.accessToken).not.toBe(before.accessToken);
    expect(refreshed.refreshToken).not.toBe(before.refreshToken);
    expect(Date.parse(refreshed.expiresAt)).toBeGreaterThan(Date.now());
    expect((await stat(await tokenFile())).mode & 0o777).toBe(0o600);

    // A token the API refuses (401) is refreshed once, and the request tried again.
    await writeFile(await tokenFile(), JSON.stringify({ ...refreshed, accessToken: 'not-a-token' }));
    const after401 = await cli('services');
    expect(after401.code).toBe(0);

    // Logout deletes the tokens and revokes the refresh token at the issuer.
    const { refreshToken } = await cached();
    const logout = await cli('logout');
    const reuse = await fetch(`${stack.baseUrl}/local/oidc/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken ?? '', client_id: 'vpce-gatekeeper-cli' }),
    });
    const afterLogout = await cli('pending');
    expect(logout).toMatchObject({ code: 0, stdout: expect.stringContaining(`signed out of ${stack.baseUrl}`) });
    expect(logout.stdout).toContain('refresh token revoked');
    expect(await readdir(join(configDir, 'sso'))).toEqual([]);
    expect(reuse.status).toBe(400);
    expect(afterLogout).toMatchObject({ code: 1, stderr: expect.stringContaining('vpce-gatekeeper login') });
  });

  it('says how to sign in again when the API refuses the token and there is no refresh token', async () => {
    const { url, done } = await startLogin();
    await answerSignInPage(url, 'local-viewer');
    expect((await done).stdout).toContain('as local-viewer (viewer)');
    const { refreshToken: _refreshToken, ...withoutRefresh } = await cached();
    await writeFile(await tokenFile(), JSON.stringify({ ...withoutRefresh, accessToken: 'not-a-token' }));

    const services = await cli('services');

    expect(services.code).toBe(1);
    expect(services.stderr).toContain('401');
    expect(services.stderr).toContain(`run \`vpce-gatekeeper login --api ${stack.baseUrl}\` again`);
    await cli('logout');
  });

  it('fails, saving nothing, when the browser comes back with an error or a state it did not send', async () => {
    const denied = await startLogin();
    const redirect = new URL(denied.url.searchParams.get('redirect_uri') ?? '');
    const answer = await fetch(`${redirect}?${new URLSearchParams({ error: 'access_denied', error_description: 'the user said no', state: denied.url.searchParams.get('state') ?? '', iss: `${stack.baseUrl}/local/oidc` })}`);
    const deniedRun = await denied.done;

    const forged = await startLogin();
    const forgedRedirect = new URL(forged.url.searchParams.get('redirect_uri') ?? '');
    const forgedAnswer = await fetch(`${forgedRedirect}?${new URLSearchParams({ code: 'stolen', state: 'not-the-state', iss: `${stack.baseUrl}/local/oidc` })}`);
    const forgedRun = await forged.done;

    expect(answer.status).toBe(400);
    expect(deniedRun).toMatchObject({ code: 1, stderr: expect.stringContaining('access_denied') });
    expect(forgedAnswer.status).toBe(400);
    expect(forgedRun).toMatchObject({ code: 1, stderr: expect.stringContaining('sign-in failed') });
    expect(await readdir(join(configDir, 'sso')).catch(() => [])).toEqual([]);
  });
});
