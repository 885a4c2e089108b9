import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOCK_SKEW_SECONDS, LocalJwtAuthorizer } from '../../../local/lambda/jwt-authorizer';

// The local stack's JWT authorizer checks what API Gateway's does: a kid, the RS256
// signature against the issuer's JWKS (found through its discovery document), iss, aud
// or client_id, exp, nbf and iat. Each check is tried alone, with a token the trusted key signed.

const AUDIENCE = 'console-client';
let server: Server;
let issuer: string;
let trusted: CryptoKey;
let authorizer: LocalJwtAuthorizer;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  trusted = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'trusted', alg: 'RS256', use: 'sig' };
  server = createServer((request, response) => {
    const body = request.url?.endsWith('/jwks')
      ? { keys: [jwk] }
      : { issuer, jwks_uri: `${issuer}/jwks` };
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oidc`;
  authorizer = new LocalJwtAuthorizer({ issuer, audiences: [AUDIENCE] });
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const now = () => Math.floor(Date.now() / 1000);

function token(claims: Record<string, unknown> = {}, options: { key?: CryptoKey; kid?: string | null } = {}): Promise<string> {
  const kid = options.kid === null ? {} : { kid: options.kid ?? 'trusted' };
  return new SignJWT({ sub: 'alice', groups: ['approvers', 'ops'], client_id: AUDIENCE, iss: issuer, iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader({ alg: 'RS256', ...kid, typ: 'JWT' })
    .sign(options.key ?? trusted);
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('the local JWT authorizer', () => {
  it('accepts a token of the issuer for the audience, with or without "Bearer", and hands over its claims as API Gateway does', async () => {
    const good = await token();

    const withBearer = await authorizer.verify(`Bearer ${good}`);
    const bare = await authorizer.verify(good);

    expect(withBearer).toMatchObject({ ok: true, claims: { sub: 'alice', groups: '[approvers ops]', client_id: AUDIENCE } });
    expect(bare.ok).toBe(true);
  });

  it('accepts an ID token whose aud names the audience', async () => {
    expect((await authorizer.verify(await token({ client_id: undefined, aud: AUDIENCE }))).ok).toBe(true);
  });

  it("accepts iat and nbf a little ahead of its clock, within the skew, as from an issuer whose clock runs fast", async () => {
    const ahead = now() + CLOCK_SKEW_SECONDS - 5;
    expect((await authorizer.verify(await token({ iat: ahead, nbf: ahead }))).ok).toBe(true);
  });

  const refusals: [string, () => Promise<string>, RegExp][] = [
    ['an expired token', () => token({ exp: now() - 60, iat: now() - 600 }), /expired/],
    ['a token that expired seconds ago (the skew is for nbf and iat only)', () => token({ exp: now() - 5, iat: now() - 600 }), /expired/],
    ['a token not valid before a time still to come (nbf)', () => token({ nbf: now() + 600 }), /nbf/],
    ['a token without exp', () => token({ exp: undefined }), /exp/],
    ['a token issued a day in the future (iat)', () => token({ iat: now() + 86_400, exp: now() + 86_700 }), /iat.*in the future/],
    ['a token issued just beyond the clock skew (iat)', () => token({ iat: now() + CLOCK_SKEW_SECONDS + 30 }), /iat/],
    ['a token whose iat is not a number', () => token({ iat: 'yesterday' }), /iat/],
    ['a token whose header names no kid, though the JWKS has a single key', () => token({}, { kid: null }), /no kid/],
    ['a token for another audience (client_id)', () => token({ client_id: 'another-app' }), /audience/],
    ['a token for another audience (aud)', () => token({ client_id: undefined, aud: 'another-app' }), /audience/],
    ['a token from another issuer', () => token({ iss: 'https://issuer.example.com' }), /iss/],
    ['a token signed by another key under the trusted kid', async () => token({}, { key: (await generateKeyPair('RS256')).privateKey }), /signature/],
    ['a token signed by a key the JWKS does not have', async () => token({}, { key: (await generateKeyPair('RS256')).privateKey, kid: 'other' }), /key/],
    ['an unsigned token (alg: none)', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', iss: issuer, client_id: AUDIENCE, exp: now() + 300 })}.`, /RS256|not valid/],
    ['a token signed with HS256', async () => new SignJWT({ sub: 'alice', iss: issuer, client_id: AUDIENCE, exp: now() + 300 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(32))), /RS256/],
    ['something that is not a JWT', async () => 'not-a-token', /not valid/],
  ];
  for (const [name, make, why] of refusals) {
    it(`refuses ${name}`, async () => {
      const result = await authorizer.verify(`Bearer ${await make()}`);
      expect(result.ok).toBe(false);
      expect(result.ok ? '' : result.message).toMatch(why);
    });
  }

  it('refuses a request without a token', async () => {
    expect(await authorizer.verify(undefined)).toEqual({ ok: false, message: 'the Authorization header carries no token' });
  });
});
