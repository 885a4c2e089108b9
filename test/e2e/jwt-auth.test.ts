import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from './local-stack';

// `npm start -- --auth jwt`: the approvals API behind a JWT authorizer that verifies
// tokens as API Gateway's does, and the local OpenID Connect issuer that signs them.

const CLIENT_ID = 'vpce-gatekeeper-console';
const STRANGER = '999988887777';

let stack: LocalStack;
let issuer: string;

beforeAll(async () => {
  stack = await startLocalStack({ auth: 'jwt', policy: { default: { allow: [{ account: '111122223333' }] } } });
  issuer = `${stack.baseUrl}/local/oidc`;
});

afterAll(async () => {
  await stack?.stop();
});

/** The authorization code flow with PKCE, as a browser would run it, for one of the local users. */
async function signIn(user: 'local-approver' | 'local-viewer', options: { verifier?: string; sentVerifier?: string } = {}): Promise<Response> {
  const verifier = options.verifier ?? randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const redirectUri = `${stack.baseUrl}/console`;
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  const params = { response_type: 'code', client_id: CLIENT_ID, redirect_uri: redirectUri, state: 'st4te', code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid' };
  const page = await fetch(`${discovery.authorization_endpoint}?${new URLSearchParams(params)}`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain(user);
  const chosen = await fetch(discovery.authorization_endpoint ?? '', {
    method: 'POST',
    body: new URLSearchParams({ ...params, user }),
    redirect: 'manual',
  });
  expect(chosen.status).toBe(302);
  const back = new URL(chosen.headers.get('location') ?? '');
  expect(back.origin + back.pathname).toBe(redirectUri);
  expect(back.searchParams.get('state')).toBe('st4te');
  return fetch(discovery.token_endpoint ?? '', {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: redirectUri,
      client_id: CLIENT_ID,
      code_verifier: options.sentVerifier ?? verifier,
    }),
  });
}

async function accessToken(user: 'local-approver' | 'local-viewer'): Promise<string> {
  const response = await signIn(user);
  expect(response.status).toBe(200);
  return ((await response.json()) as { access_token: string }).access_token;
}

function api(method: string, path: string, token: string | undefined, body?: unknown): Promise<Response> {
  return fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
}

/** A token like the issuer's, with changes, signed by `key` (default: a key the issuer never published). */
async function forged(changes: { claims?: Record<string, unknown>; key?: 'foreign' }, template: string): Promise<string> {
  const claims = { ...decodeJwt(template), ...changes.claims };
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { kid } = decodeProtectedHeader(template);
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: kid ?? 'x', typ: 'JWT' }).sign(privateKey);
}

describe('the local OIDC issuer', () => {
  it('publishes discovery and a JWKS with the RS256 key that verifies its tokens', async () => {
    const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ issuer, jwks_uri: `${issuer}/jwks`, code_challenge_methods_supported: ['S256'] });
    const { keys } = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: JWK[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
    await expect(importJWK(keys[0] as JWK, 'RS256')).resolves.toBeDefined();
  });

  it('issues tokens only to the PKCE verifier that matches the challenge', async () => {
    const wrong = await signIn('local-approver', { sentVerifier: randomBytes(32).toString('base64url') });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining('PKCE') });

    const right = await signIn('local-approver');
    expect(right.status).toBe(200);
    const tokens = (await right.json()) as { access_token: string; id_token: string; token_type: string };
    expect(tokens.token_type).toBe('Bearer');
    expect(decodeJwt(tokens.access_token)).toMatchObject({ iss: issuer, sub: 'local-approver', client_id: CLIENT_ID, groups: ['approvers'] });
    expect(decodeJwt(tokens.id_token)).toMatchObject({ iss: issuer, sub: 'local-approver', aud: CLIENT_ID });
  });
});

describe('the approvals API behind the JWT authorizer', () => {
  it('runs the JWT path end to end: the viewer reads, only the approver group decides', async () => {
    const approver = await accessToken('local-approver');
    const viewer = await accessToken('local-viewer');
    const { serviceId } = await stack.createService();
    const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => (await stack.record(serviceId, endpointId))?.decision?.outcome === 'hold' && (await stack.idle()));

    const queue = await api('GET', '/connections', viewer);
    const refused = await api('POST', `/services/${serviceId}/connections/${endpointId}/accept`, viewer, { reason: 'viewer tries' });
    const accepted = await api('POST', `/services/${serviceId}/connections/${endpointId}/accept`, approver, { reason: 'ticket SSO-1' });

    expect(queue.status).toBe(200);
    expect(((await queue.json()) as { connections: { endpointId: string }[] }).connections.map((c) => c.endpointId)).toContain(endpointId);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('local-viewer is not an approver');
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toMatchObject({ decision: { outcome: 'accept', decidedBy: 'local-approver', reason: 'ticket SSO-1' } });
    await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).find((e) => e.vpcEndpointId === endpointId)?.state === 'available');
  });

  it('refuses a request without a token, and a SigV4-signed one, with 401', async () => {
    expect((await api('GET', '/services', undefined)).status).toBe(401);
    const signed = await fetch(`${stack.baseUrl}/services`, { headers: { authorization: 'AWS4-HMAC-SHA256 Credential=LOCALAPPROVER/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, Signature=00' } });
    expect(signed.status).toBe(401);
  });

  // Each claim check (exp, nbf, iss, aud/client_id) is pinned with tokens signed by the trusted key in
  // test/unit/local/jwt-authorizer.test.ts; here, what anyone without the issuer's key could send.
  describe('refuses, with 401 and nothing reaching the function', () => {
    const cases: [string, (template: string) => Promise<string>][] = [
      ['a token signed by another key', (t) => forged({}, t)],
      ['an unsigned token (alg: none)', async (t) => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(decodeJwt(t))}.`],
      ['a token whose payload was altered after signing', async (t) => {
        const [header, , signature] = t.split('.');
        return `${header}.${b64({ ...decodeJwt(t), groups: ['approvers'], sub: 'mallory' })}.${signature}`;
      }],
    ];
    for (const [name, make] of cases) {
      it(name, async () => {
        const template = await accessToken('local-viewer');
        const token = await make(template);
        const response = await api('GET', '/services', token);
        expect(response.status).toBe(401);
        expect(await response.json()).toEqual({ message: 'Unauthorized' });
      });
    }
  });
});

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

