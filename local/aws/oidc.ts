import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ValidationError } from '../../lib/errors';
import { readBody, sendJson } from '../http-io';

/**
 * A local OpenID Connect issuer at /local/oidc, for the JWT mode of the local
 * stack (`npm start -- --auth jwt`): discovery, JWKS, an authorize page where
 * one picks a local user, a token endpoint that checks PKCE (S256) and refreshes
 * tokens, and token revocation, as a hosted IdP such as Cognito does. Its tokens
 * are RS256 JWTs that the local JWT authorizer verifies against the JWKS,
 * fetched over HTTP like API Gateway.
 *
 * It knows its clients and their redirect URIs, as an IdP does: the console's
 * page, and the CLI's loopback redirect (any port, RFC 8252 §7.3). It refuses
 * anything else with 400, and keeps a bounded number of codes and refresh
 * tokens, each for a bounded time.
 */

export const OIDC_PATH = '/local/oidc';
/** The console's client id in the local stack (the stage parameter consoleClientId when deployed). */
export const LOCAL_CONSOLE_CLIENT_ID = 'vpce-gatekeeper-console';
/** The CLI's client id in the local stack (the stage parameter cliClientId when deployed). */
export const LOCAL_CLI_CLIENT_ID = 'vpce-gatekeeper-cli';
/** The JWT group the local approver is in: the local stack's APPROVER_GROUPS in JWT mode. */
export const LOCAL_APPROVER_GROUP = 'approvers';

/** The users the authorize page offers. */
export const LOCAL_OIDC_USERS = {
  'local-approver': { groups: [LOCAL_APPROVER_GROUP], name: 'Local Approver' },
  'local-viewer': { groups: ['viewers'], name: 'Local Viewer' },
} as const;
export type LocalOidcUser = keyof typeof LOCAL_OIDC_USERS;

/**
 * A registered client: a public client (no secret, PKCE) and the redirect URIs
 * it may name, compared exactly, except that a loopback `http://127.0.0.1/…`
 * URI matches on any port, as RFC 8252 §7.3 asks for native apps.
 */
export interface OidcClient {
  clientId: string;
  redirectUris: string[];
}

/** The local stack's clients: the console at `${baseUrl}/console`, and the CLI on a loopback port. */
export function localOidcClients(baseUrl: string): OidcClient[] {
  return [
    { clientId: LOCAL_CONSOLE_CLIENT_ID, redirectUris: [`${baseUrl}/console`] },
    { clientId: LOCAL_CLI_CLIENT_ID, redirectUris: ['http://127.0.0.1/callback', 'http://[::1]/callback'] },
  ];
}

const TOKEN_LIFETIME_SECONDS = 3600;

/** How much the issuer keeps, and for how long. */
export interface OidcLimits {
  codeLifetimeMs: number;
  refreshTokenLifetimeMs: number;
  /** Codes, and refresh tokens, outstanding at once; past that, new sign-ins are refused until some expire. */
  maxOutstanding: number;
}

const DEFAULT_LIMITS: OidcLimits = { codeLifetimeMs: 60_000, refreshTokenLifetimeMs: 12 * 3600_000, maxOutstanding: 1000 };
/** An S256 code_challenge is the base64url of a SHA-256 digest: exactly 43 characters. */
const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const MAX_PARAMETER_LENGTH = 1024;
const MAX_FORM_BYTES = 16 * 1024;
// The authorize page is plain HTML with forms: no script at all.
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

interface PendingCode {
  user: LocalOidcUser;
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  nonce?: string;
  expiresAt: number;
}

interface RefreshGrant {
  user: LocalOidcUser;
  clientId: string;
  expiresAt: number;
}

/** An authorize request that passed every check. */
interface AuthorizeRequest {
  clientId: string;
  redirectUri: string;
  state?: string;
  codeChallenge: string;
  nonce?: string;
}

export class LocalOidcIssuer {
  private readonly codes = new Map<string, PendingCode>();
  private readonly refreshTokens = new Map<string, RefreshGrant>();

  private constructor(
    readonly issuer: string,
    private readonly clients: readonly OidcClient[],
    private readonly privateKey: CryptoKey,
    private readonly publicJwk: JWK,
    private readonly limits: OidcLimits,
  ) {}

  /** An issuer at `${baseUrl}/local/oidc` with a fresh RSA key, for the given clients (by default the console and the CLI). */
  static async start(baseUrl: string, clients: readonly OidcClient[] = localOidcClients(baseUrl), limits: Partial<OidcLimits> = {}): Promise<LocalOidcIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    return new LocalOidcIssuer(`${baseUrl}${OIDC_PATH}`, clients, privateKey, publicJwk, { ...DEFAULT_LIMITS, ...limits });
  }

  /** Whether a request path belongs to the issuer. */
  static handles(path: string): boolean {
    return path === OIDC_PATH || path.startsWith(`${OIDC_PATH}/`);
  }

  /** The client ids the issuer knows: the audiences its tokens are for. */
  get clientIds(): string[] {
    return this.clients.map((client) => client.clientId);
  }

  /** How many codes and refresh tokens it holds (the bound its tests check). */
  get outstanding(): { codes: number; refreshTokens: number } {
    return { codes: this.codes.size, refreshTokens: this.refreshTokens.size };
  }

  get discovery(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      authorization_endpoint: `${this.issuer}/authorize`,
      token_endpoint: `${this.issuer}/token`,
      revocation_endpoint: `${this.issuer}/revoke`,
      jwks_uri: `${this.issuer}/jwks`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'profile'],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint_auth_methods_supported: ['none'],
      authorization_response_iss_parameter_supported: true,
      claims_supported: ['sub', 'name', 'groups', 'client_id', 'aud', 'iss', 'exp', 'iat', 'nbf'],
    };
  }

  /** Answers one request under /local/oidc; bad input gets 400 with a body, never a dropped connection. */
  async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    try {
      await this.route(request, response);
    } catch (error) {
      if (response.headersSent) throw error;
      if (error instanceof ValidationError) return sendJson(response, 400, { error: 'invalid_request', error_description: error.message });
      throw error;
    }
  }

  private async route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.issuer);
    const path = url.pathname.slice(OIDC_PATH.length);
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/.well-known/openid-configuration') return sendJson(response, 200, this.discovery);
    if (method === 'GET' && path === '/jwks') return sendJson(response, 200, { keys: [this.publicJwk] });
    if (method === 'GET' && path === '/authorize') return this.authorizePage(url.searchParams, response);
    if (method === 'POST' && path === '/authorize') return this.signIn(await formOf(request), response);
    if (method === 'POST' && path === '/token') return this.token(await formOf(request), response);
    if (method === 'POST' && path === '/revoke') return this.revoke(await formOf(request), response);
    sendJson(response, 404, { error: 'not_found', error_description: `no ${method} ${url.pathname} on the local OIDC issuer` });
  }

  /** The page where one picks who to sign in as. */
  private authorizePage(params: URLSearchParams, response: ServerResponse): void {
    const checked = this.checkAuthorizeRequest(params);
    if (typeof checked === 'string') return page(response, 400, 'Sign-in request refused', `<p>${escape(checked)}</p>`);
    const hidden = ['client_id', 'redirect_uri', 'state', 'code_challenge', 'nonce']
      .map((name) => `<input type="hidden" name="${name}" value="${escape(params.get(name) ?? '')}">`)
      .join('');
    const buttons = Object.entries(LOCAL_OIDC_USERS)
      .map(
        ([user, { groups, name }]) =>
          `<button name="user" value="${user}">${escape(name)} <small>(${user}, groups: ${escape(groups.join(', '))})</small></button>`,
      )
      .join('');
    page(response, 200, 'Sign in to vpce-gatekeeper (local)', `<p>Local OpenID Connect issuer. Choose a user:</p><form method="post">${hidden}${buttons}</form>`);
  }

  private signIn(form: URLSearchParams, response: ServerResponse): void {
    const params = new URLSearchParams(form);
    params.set('response_type', 'code');
    params.set('code_challenge_method', 'S256');
    const checked = this.checkAuthorizeRequest(params);
    const user = form.get('user') ?? '';
    // An own property only: 'constructor' or '__proto__' is nobody.
    const problem = typeof checked === 'string' ? checked : Object.hasOwn(LOCAL_OIDC_USERS, user) ? undefined : `unknown user '${user}'`;
    if (problem || typeof checked === 'string') return page(response, 400, 'Sign-in request refused', `<p>${escape(problem ?? '')}</p>`);
    sweep(this.codes);
    if (this.codes.size >= this.limits.maxOutstanding) {
      return page(response, 503, 'Too many sign-ins in progress', `<p>Try again in a minute, when some have expired.</p>`);
    }
    const code = randomBytes(24).toString('base64url');
    this.codes.set(code, {
      user: user as LocalOidcUser,
      clientId: checked.clientId,
      redirectUri: checked.redirectUri,
      codeChallenge: checked.codeChallenge,
      nonce: checked.nonce,
      expiresAt: Date.now() + this.limits.codeLifetimeMs,
    });
    const target = new URL(checked.redirectUri);
    target.searchParams.set('code', code);
    if (checked.state) target.searchParams.set('state', checked.state);
    target.searchParams.set('iss', this.issuer); // RFC 9207: says which issuer answered
    response.writeHead(302, { location: target.toString(), 'cache-control': 'no-store' });
    response.end();
  }

  /** The token endpoint: an authorization code (once, with its PKCE verifier), or a refresh token (rotated on use). */
  private async token(form: URLSearchParams, response: ServerResponse): Promise<void> {
    const refuse = (error: string, description: string) => sendJson(response, 400, { error, error_description: description });
    const clientId = form.get('client_id') ?? '';
    if (!this.clientIds.includes(clientId)) return refuse('invalid_client', `unknown client_id '${clientId.slice(0, 100)}'`);
    const grantType = form.get('grant_type');
    let grant: { user: LocalOidcUser; nonce?: string };
    if (grantType === 'authorization_code') {
      const code = form.get('code') ?? '';
      const pending = this.codes.get(code);
      this.codes.delete(code);
      if (!pending || pending.expiresAt < Date.now()) return refuse('invalid_grant', 'the code is unknown, used or expired');
      if (pending.clientId !== clientId) return refuse('invalid_grant', 'the code was issued to another client');
      if (pending.redirectUri !== form.get('redirect_uri')) return refuse('invalid_grant', 'redirect_uri differs from the authorize request');
      const verifier = form.get('code_verifier') ?? '';
      if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return refuse('invalid_grant', 'code_verifier is missing or malformed');
      if (createHash('sha256').update(verifier).digest('base64url') !== pending.codeChallenge) {
        return refuse('invalid_grant', 'code_verifier does not match the code_challenge (PKCE)');
      }
      grant = pending;
    } else if (grantType === 'refresh_token') {
      const token = form.get('refresh_token') ?? '';
      const held = this.refreshTokens.get(token);
      this.refreshTokens.delete(token);
      if (!held || held.expiresAt < Date.now()) return refuse('invalid_grant', 'the refresh token is unknown, used, revoked or expired');
      if (held.clientId !== clientId) return refuse('invalid_grant', 'the refresh token was issued to another client');
      grant = held;
    } else {
      return refuse('unsupported_grant_type', 'only authorization_code and refresh_token are supported');
    }
    sweep(this.refreshTokens);
    if (this.refreshTokens.size >= this.limits.maxOutstanding) return sendJson(response, 503, { error: 'temporarily_unavailable', error_description: 'too many sessions' });
    const refreshToken = randomBytes(32).toString('base64url');
    this.refreshTokens.set(refreshToken, { user: grant.user, clientId, expiresAt: Date.now() + this.limits.refreshTokenLifetimeMs });
    const tokens = await this.issueTokens(grant.user, clientId, grant.nonce);
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' });
    response.end(JSON.stringify({ ...tokens, refresh_token: refreshToken, token_type: 'Bearer', expires_in: TOKEN_LIFETIME_SECONDS }));
  }

  /** RFC 7009: a refresh token of the client stops working; an unknown token is not an error. */
  private revoke(form: URLSearchParams, response: ServerResponse): void {
    const clientId = form.get('client_id') ?? '';
    if (!this.clientIds.includes(clientId)) return sendJson(response, 400, { error: 'invalid_client', error_description: 'unknown client_id' });
    const token = form.get('token') ?? '';
    if (this.refreshTokens.get(token)?.clientId === clientId) this.refreshTokens.delete(token);
    response.writeHead(200, { 'cache-control': 'no-store', 'content-length': '0' });
    response.end();
  }

  /**
   * An access token shaped like Cognito's (client_id, no aud) and an ID token
   * (aud: the client), both carrying the user's groups.
   */
  async issueTokens(user: LocalOidcUser, clientId: string, nonce?: string): Promise<{ access_token: string; id_token: string }> {
    const { groups, name } = LOCAL_OIDC_USERS[user];
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT({ groups: [...groups], ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: String(this.publicJwk.kid), typ: 'JWT' })
        .setIssuer(this.issuer)
        .setSubject(user)
        .setIssuedAt()
        .setNotBefore('0s')
        .setExpirationTime(`${TOKEN_LIFETIME_SECONDS}s`)
        .setJti(randomUUID())
        .sign(this.privateKey);
    return {
      access_token: await sign({ client_id: clientId, token_use: 'access', scope: 'openid profile' }),
      id_token: await sign({ aud: clientId, token_use: 'id', name, ...(nonce ? { nonce } : {}) }),
    };
  }

  /** The request, checked; or what is wrong with it. */
  private checkAuthorizeRequest(params: URLSearchParams): AuthorizeRequest | string {
    for (const [name, value] of params) {
      if (value.length > MAX_PARAMETER_LENGTH) return `${name.slice(0, 40)} is longer than ${MAX_PARAMETER_LENGTH} characters`;
    }
    if (params.get('response_type') !== 'code') return 'response_type must be code';
    const clientId = params.get('client_id') ?? '';
    const client = this.clients.find((candidate) => candidate.clientId === clientId);
    if (!client) return `unknown client_id '${clientId}'`;
    const redirectUri = params.get('redirect_uri') ?? '';
    if (!client.redirectUris.some((registered) => redirectMatches(registered, redirectUri))) {
      return `redirect_uri '${redirectUri}' is not registered for client ${clientId}`;
    }
    const codeChallenge = params.get('code_challenge') ?? '';
    if (!codeChallenge) return 'code_challenge is required (PKCE)';
    if (params.get('code_challenge_method') !== 'S256') return 'code_challenge_method must be S256';
    if (!CODE_CHALLENGE.test(codeChallenge)) return 'code_challenge must be 43 base64url characters (the SHA-256 of the verifier)';
    return { clientId, redirectUri, codeChallenge, state: params.get('state') || undefined, nonce: params.get('nonce') || undefined };
  }
}

/** Exact match, or for a loopback http URI the same but for the port (RFC 8252 §7.3). */
function redirectMatches(registered: string, requested: string): boolean {
  if (registered === requested) return true;
  let want: URL;
  let got: URL;
  try {
    want = new URL(registered);
    got = new URL(requested);
  } catch {
    return false;
  }
  const loopback = want.protocol === 'http:' && (want.hostname === '127.0.0.1' || want.hostname === '[::1]');
  return loopback && got.protocol === 'http:' && got.hostname === want.hostname && got.pathname === want.pathname && !got.search && !got.hash && !got.username && !got.password;
}

function sweep(entries: Map<string, { expiresAt: number }>): void {
  const now = Date.now();
  for (const [key, entry] of entries) if (entry.expiresAt < now) entries.delete(key);
}

function page(response: ServerResponse, status: number, title: string, body: string): void {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:16px system-ui,sans-serif;max-width:36rem;margin:4rem auto;color:#16191f}button{display:block;width:100%;margin:.5rem 0;padding:.75rem;font:inherit;text-align:left;cursor:pointer}small{color:#5f6b7a}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`;
  response.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': PAGE_CSP, 'cache-control': 'no-store' });
  response.end(html);
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A form body (application/x-www-form-urlencoded) of at most 16 KiB. */
async function formOf(request: IncomingMessage): Promise<URLSearchParams> {
  const length = Number(request.headers['content-length'] ?? 0);
  if (length > MAX_FORM_BYTES) throw new ValidationError(`the form is ${length} bytes; the most accepted is ${MAX_FORM_BYTES}`);
  const body = await readBody(request);
  if (Buffer.byteLength(body) > MAX_FORM_BYTES) throw new ValidationError(`the form is larger than ${MAX_FORM_BYTES} bytes`);
  return new URLSearchParams(body);
}
