import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CLI_CLIENT_ID, LOCAL_CONSOLE_CLIENT_ID, LocalOidcIssuer } from '../../../local/aws/oidc';

// The local OpenID Connect issuer as an attacker and a careless client use it: it
// knows its clients and their redirect URIs, looks users up without the
// prototype, answers 400 (never a dropped connection) to bad input, bounds what
// it keeps, and rotates and revokes refresh tokens.

let server: Server;
let base: string;
let issuer: LocalOidcIssuer;

beforeAll(async () => {
  server = createServer((request, response) => {
    issuer.serve(request, response).catch(() => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer = await LocalOidcIssuer.start(base);
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const verifier = () => randomBytes(32).toString('base64url');
const challengeOf = (v: string) => createHash('sha256').update(v).digest('base64url');
const CLI_REDIRECT = 'http://127.0.0.1:54321/callback';

function authorizeParams(overrides: Record<string, string> = {}, codeVerifier = verifier()): Record<string, string> {
  return {
    response_type: 'code',
    client_id: LOCAL_CLI_CLIENT_ID,
    redirect_uri: CLI_REDIRECT,
    state: 'st4te',
    code_challenge: challengeOf(codeVerifier),
    code_challenge_method: 'S256',
    ...overrides,
  };
}

async function choose(params: Record<string, string>, user = 'local-approver'): Promise<Response> {
  return fetch(`${issuer.issuer}/authorize`, { method: 'POST', body: new URLSearchParams({ ...params, user }), redirect: 'manual' });
}

async function token(form: Record<string, string>): Promise<Response> {
  return fetch(`${issuer.issuer}/token`, { method: 'POST', body: new URLSearchParams(form) });
}

/** A whole sign-in for the CLI client: its tokens. */
async function signIn(): Promise<{ access_token: string; refresh_token: string; id_token: string }> {
  const codeVerifier = verifier();
  const chosen = await choose(authorizeParams({}, codeVerifier));
  const code = new URL(chosen.headers.get('location') ?? '').searchParams.get('code') ?? '';
  const response = await token({ grant_type: 'authorization_code', code, client_id: LOCAL_CLI_CLIENT_ID, redirect_uri: CLI_REDIRECT, code_verifier: codeVerifier });
  expect(response.status).toBe(200);
  return (await response.json()) as { access_token: string; refresh_token: string; id_token: string };
}

describe('the local OIDC issuer', () => {
  it("sends the CLI's browser back to its loopback port, with the code, the state and the issuer", async () => {
    const page = await fetch(`${issuer.issuer}/authorize?${new URLSearchParams(authorizeParams())}`);
    const chosen = await choose(authorizeParams());

    expect(page.status).toBe(200);
    expect(chosen.status).toBe(302);
    const back = new URL(chosen.headers.get('location') ?? '');
    expect(`${back.origin}${back.pathname}`).toBe(CLI_REDIRECT);
    expect(Object.fromEntries(back.searchParams)).toMatchObject({ state: 'st4te', iss: issuer.issuer, code: expect.any(String) });
  });

  it.each([
    ['another path on its own origin', LOCAL_CONSOLE_CLIENT_ID, () => `${base}/local/control`],
    ["the console's page for the CLI client", LOCAL_CLI_CLIENT_ID, () => `${base}/console`],
    ['a loopback port for the console client', LOCAL_CONSOLE_CLIENT_ID, () => CLI_REDIRECT],
    ['another host on the loopback path', LOCAL_CLI_CLIENT_ID, () => 'http://evil.example/callback'],
    ['localhost where 127.0.0.1 is registered', LOCAL_CLI_CLIENT_ID, () => 'http://localhost:54321/callback'],
    ['https on the loopback address', LOCAL_CLI_CLIENT_ID, () => 'https://127.0.0.1:54321/callback'],
    ['another path on the loopback address', LOCAL_CLI_CLIENT_ID, () => 'http://127.0.0.1:54321/steal'],
    ['a loopback URI with a query', LOCAL_CLI_CLIENT_ID, () => 'http://127.0.0.1:54321/callback?next=x'],
    ['a relative URI', LOCAL_CLI_CLIENT_ID, () => '/callback'],
  ])('refuses a redirect_uri that is not registered: %s', async (_, clientId, redirect) => {
    const params = authorizeParams({ client_id: clientId, redirect_uri: redirect() });

    const page = await fetch(`${issuer.issuer}/authorize?${new URLSearchParams(params)}`);
    const chosen = await choose(params);

    expect(page.status).toBe(400);
    expect(await page.text()).toContain('is not registered for client');
    expect(chosen.status).toBe(400);
    expect(chosen.headers.get('location')).toBeNull();
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'nobody'])('refuses the user %s, which is no local user, with 400', async (user) => {
    const chosen = await choose(authorizeParams(), user);

    expect(chosen.status).toBe(400);
    expect(await chosen.text()).toContain('unknown user');
  });

  it.each([
    ['no code_challenge', { code_challenge: '' }, 'code_challenge is required'],
    ['a plain challenge method', { code_challenge_method: 'plain' }, 'must be S256'],
    ['a code_challenge of 5,000 characters', { code_challenge: 'a'.repeat(5000) }, 'longer than'],
    ['a code_challenge of 42 characters', { code_challenge: 'a'.repeat(42) }, '43 base64url characters'],
    ['a code_challenge with other characters', { code_challenge: `${'a'.repeat(42)}=` }, '43 base64url characters'],
    ['a state of 2,000 characters', { state: 's'.repeat(2000) }, 'longer than'],
    ['an unknown client', { client_id: 'mallory' }, 'unknown client_id'],
    ['a token response type', { response_type: 'token' }, 'response_type must be code'],
  ])('refuses an authorize request with %s', async (_, overrides, message) => {
    const page = await fetch(`${issuer.issuer}/authorize?${new URLSearchParams(authorizeParams(overrides))}`);

    expect(page.status).toBe(400);
    expect(await page.text()).toContain(message);
  });

  it('keeps no code for refused requests, so a flood of huge challenges costs it nothing', async () => {
    const before = issuer.outstanding.codes;

    const answers = await Promise.all(Array.from({ length: 60 }, () => choose(authorizeParams({ code_challenge: 'x'.repeat(15_000) }))));

    expect(answers.every((answer) => answer.status === 400)).toBe(true);
    expect(issuer.outstanding.codes).toBe(before);
  });

  it('answers 400 to a form larger than 16 KiB, and to a garbled one, without dropping the connection', async () => {
    const big = await fetch(`${issuer.issuer}/token`, { method: 'POST', body: `grant_type=authorization_code&code=${'c'.repeat(20_000)}` });
    const garbled = await fetch(`${issuer.issuer}/token`, { method: 'POST', body: '%%%&&&===\u0000' });

    expect(big.status).toBe(400);
    expect(await big.json()).toMatchObject({ error: 'invalid_request' });
    expect(garbled.status).toBe(400);
    expect(await garbled.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('answers a header with a bare carriage return with 400, as HTTP parsers must', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(base).port), '127.0.0.1', () => {
        socket.write(`GET /local/oidc/jwks HTTP/1.1\r\nHost: x\r\ncrit: a\rb\r\n\r\n`);
      });
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });

    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('gives a code once, only with the verifier, the client and the redirect it was issued for', async () => {
    const codeVerifier = verifier();
    const codeFor = async () => new URL((await choose(authorizeParams({}, codeVerifier))).headers.get('location') ?? '').searchParams.get('code') ?? '';
    const exchange = (code: string, overrides: Record<string, string> = {}) =>
      token({ grant_type: 'authorization_code', code, client_id: LOCAL_CLI_CLIENT_ID, redirect_uri: CLI_REDIRECT, code_verifier: codeVerifier, ...overrides });

    const otherRedirect = await exchange(await codeFor(), { redirect_uri: 'http://127.0.0.1:1/callback' });
    const otherClient = await exchange(await codeFor(), { client_id: LOCAL_CONSOLE_CLIENT_ID });
    const code = await codeFor();
    const first = await exchange(code);
    const second = await exchange(code);

    expect(otherRedirect.status).toBe(400);
    expect(otherClient.status).toBe(400);
    expect(first.status).toBe(200);
    expect(second.status).toBe(400);
    expect(await second.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('issues tokens for the CLI client whose ID token carries its nonce, and a refresh token that works once', async () => {
    const codeVerifier = verifier();
    const chosen = await choose(authorizeParams({ nonce: 'n0nce' }, codeVerifier));
    const code = new URL(chosen.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const tokens = (await (await token({ grant_type: 'authorization_code', code, client_id: LOCAL_CLI_CLIENT_ID, redirect_uri: CLI_REDIRECT, code_verifier: codeVerifier })).json()) as {
      access_token: string;
      id_token: string;
      refresh_token: string;
    };

    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: LOCAL_CLI_CLIENT_ID });
    const reused = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: LOCAL_CLI_CLIENT_ID });

    expect(decodeJwt(tokens.access_token)).toMatchObject({ client_id: LOCAL_CLI_CLIENT_ID, sub: 'local-approver' });
    expect(decodeJwt(tokens.id_token)).toMatchObject({ aud: LOCAL_CLI_CLIENT_ID, nonce: 'n0nce' });
    expect(refreshed.status).toBe(200);
    const fresh = (await refreshed.json()) as { access_token: string; refresh_token: string };
    expect(fresh.refresh_token).not.toBe(tokens.refresh_token);
    expect(decodeJwt(fresh.access_token)).toMatchObject({ client_id: LOCAL_CLI_CLIENT_ID, sub: 'local-approver' });
    expect(reused.status).toBe(400);
  });

  it('revokes a refresh token of the client that asks, and not one of another client', async () => {
    const tokens = await signIn();

    const byOther = await fetch(`${issuer.issuer}/revoke`, { method: 'POST', body: new URLSearchParams({ token: tokens.refresh_token, client_id: LOCAL_CONSOLE_CLIENT_ID }) });
    const stillGood = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: LOCAL_CLI_CLIENT_ID });
    const fresh = ((await stillGood.json()) as { refresh_token: string }).refresh_token;
    const revoked = await fetch(`${issuer.issuer}/revoke`, { method: 'POST', body: new URLSearchParams({ token: fresh, client_id: LOCAL_CLI_CLIENT_ID }) });
    const afterRevoke = await token({ grant_type: 'refresh_token', refresh_token: fresh, client_id: LOCAL_CLI_CLIENT_ID });

    expect(byOther.status).toBe(200);
    expect(stillGood.status).toBe(200);
    expect(revoked.status).toBe(200);
    expect(afterRevoke.status).toBe(400);
  });

  it('refuses a grant type it does not support, and an unknown client at the token endpoint', async () => {
    const password = await token({ grant_type: 'password', client_id: LOCAL_CLI_CLIENT_ID, username: 'local-approver', password: 'x' });
    const unknown = await token({ grant_type: 'authorization_code', client_id: 'constructor', code: 'x' });

    expect(await password.json()).toMatchObject({ error: 'unsupported_grant_type' });
    expect(password.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('expires its codes and sweeps them, and refuses new sign-ins past its bound until some expire', async () => {
    const small = await LocalOidcIssuer.start(base, undefined, { maxOutstanding: 3, codeLifetimeMs: 200 });
    const inner = createServer((request, response) => void small.serve(request, response));
    await new Promise<void>((resolve) => inner.listen(0, '127.0.0.1', resolve));
    const authorize = `http://127.0.0.1:${(inner.address() as AddressInfo).port}/local/oidc/authorize`;
    const ask = async (body: Record<string, string>) => (await fetch(authorize, { method: 'POST', body: new URLSearchParams(body), redirect: 'manual' })).status;
    const params = { ...authorizeParams(), user: 'local-approver' };

    const first = await Promise.all([ask(params), ask(params), ask(params)]);
    const fourth = await ask(params);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const later = await ask(params);

    await new Promise((resolve) => inner.close(resolve));

    expect(first).toEqual([302, 302, 302]);
    expect(fourth).toBe(503);
    expect(later).toBe(302);
    expect(small.outstanding.codes).toBe(1);
  });
});
