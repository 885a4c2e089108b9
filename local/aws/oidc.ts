import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { readBody, sendJson } from '../http-io';

/**
 * A local OpenID Connect issuer at /local/oidc, for the JWT mode of the local
 * stack (`npm start -- --auth jwt`): discovery, JWKS, an authorize page where
 * one picks a local user, and a token endpoint that checks PKCE (S256), as a
 * hosted IdP such as Cognito does. Its tokens are RS256 JWTs that the local
 * JWT authorizer verifies against the JWKS, fetched over HTTP like API Gateway.
 */

export const OIDC_PATH = '/local/oidc';
/** The console's client id in the local stack (the stage parameter consoleClientId when deployed). */
export const LOCAL_CONSOLE_CLIENT_ID = 'vpce-gatekeeper-console';
/** The JWT group the local approver is in: the local stack's APPROVER_GROUPS in JWT mode. */
export const LOCAL_APPROVER_GROUP = 'approvers';

/** The users the authorize page offers. */
export const LOCAL_OIDC_USERS = {
  'local-approver': { groups: [LOCAL_APPROVER_GROUP], name: 'Local Approver' },
  'local-viewer': { groups: ['viewers'], name: 'Local Viewer' },
} as const;
export type LocalOidcUser = keyof typeof LOCAL_OIDC_USERS;

const TOKEN_LIFETIME_SECONDS = 3600;
const CODE_LIFETIME_MS = 60_000;
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

export class LocalOidcIssuer {
  private readonly codes = new Map<string, PendingCode>();

  private constructor(
    readonly issuer: string,
    private readonly clientIds: readonly string[],
    private readonly privateKey: CryptoKey,
    private readonly publicJwk: JWK,
  ) {}

  /** An issuer at `${baseUrl}/local/oidc` with a fresh RSA key, for the given client ids. */
  static async start(baseUrl: string, clientIds: readonly string[] = [LOCAL_CONSOLE_CLIENT_ID]): Promise<LocalOidcIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
    return new LocalOidcIssuer(`${baseUrl}${OIDC_PATH}`, clientIds, privateKey, publicJwk);
  }

  /** Whether a request path belongs to the issuer. */
  static handles(path: string): boolean {
    return path === OIDC_PATH || path.startsWith(`${OIDC_PATH}/`);
  }

  get discovery(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      authorization_endpoint: `${this.issuer}/authorize`,
      token_endpoint: `${this.issuer}/token`,
      jwks_uri: `${this.issuer}/jwks`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code'],
      code_challenge_methods_supported: ['S256'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'profile'],
      token_endpoint_auth_methods_supported: ['none'],
      claims_supported: ['sub', 'name', 'groups', 'client_id', 'aud', 'iss', 'exp', 'iat', 'nbf'],
    };
  }

  async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.issuer);
    const path = url.pathname.slice(OIDC_PATH.length);
    const method = request.method ?? 'GET';
    if (method === 'GET' && path === '/.well-known/openid-configuration') return sendJson(response, 200, this.discovery);
    if (method === 'GET' && path === '/jwks') return sendJson(response, 200, { keys: [this.publicJwk] });
    if (method === 'GET' && path === '/authorize') return this.authorizePage(url.searchParams, response);
    if (method === 'POST' && path === '/authorize') return this.signIn(formOf(await readBody(request)), response);
    if (method === 'POST' && path === '/token') return this.token(formOf(await readBody(request)), response);
    sendJson(response, 404, { error: 'not_found', error_description: `no ${method} ${url.pathname} on the local OIDC issuer` });
  }

  /** The page where one picks who to sign in as. */
  private authorizePage(params: URLSearchParams, response: ServerResponse): void {
    const problem = this.checkAuthorizeRequest(params);
    if (problem) return page(response, 400, 'Sign-in request refused', `<p>${escape(problem)}</p>`);
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

  private signIn(form: Record<string, string>, response: ServerResponse): void {
    const params = new URLSearchParams({ ...form, response_type: 'code', code_challenge_method: 'S256' });
    const problem = this.checkAuthorizeRequest(params);
    const user = form.user as LocalOidcUser;
    if (problem || !(user in LOCAL_OIDC_USERS)) return page(response, 400, 'Sign-in request refused', `<p>${escape(problem ?? 'unknown user')}</p>`);
    const code = randomBytes(24).toString('base64url');
    this.codes.set(code, {
      user,
      clientId: form.client_id ?? '',
      redirectUri: form.redirect_uri ?? '',
      codeChallenge: form.code_challenge ?? '',
      nonce: form.nonce || undefined,
      expiresAt: Date.now() + CODE_LIFETIME_MS,
    });
    const target = new URL(form.redirect_uri ?? '');
    target.searchParams.set('code', code);
    if (form.state) target.searchParams.set('state', form.state);
    response.writeHead(302, { location: target.toString(), 'cache-control': 'no-store' });
    response.end();
  }

  /** The authorization code grant: the code once, for the client and redirect it was issued to, with the PKCE verifier. */
  private async token(form: Record<string, string>, response: ServerResponse): Promise<void> {
    const refuse = (error: string, description: string) => sendJson(response, 400, { error, error_description: description });
    if (form.grant_type !== 'authorization_code') return refuse('unsupported_grant_type', 'only authorization_code is supported');
    const pending = this.codes.get(form.code ?? '');
    this.codes.delete(form.code ?? '');
    if (!pending || pending.expiresAt < Date.now()) return refuse('invalid_grant', 'the code is unknown, used or expired');
    if (pending.clientId !== form.client_id) return refuse('invalid_grant', 'the code was issued to another client');
    if (pending.redirectUri !== form.redirect_uri) return refuse('invalid_grant', 'redirect_uri differs from the authorize request');
    const verifier = form.code_verifier ?? '';
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) return refuse('invalid_grant', 'code_verifier is missing or malformed');
    if (createHash('sha256').update(verifier).digest('base64url') !== pending.codeChallenge) {
      return refuse('invalid_grant', 'code_verifier does not match the code_challenge (PKCE)');
    }
    const tokens = await this.issueTokens(pending.user, pending.clientId, pending.nonce);
    response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' });
    response.end(JSON.stringify({ ...tokens, token_type: 'Bearer', expires_in: TOKEN_LIFETIME_SECONDS }));
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

  private checkAuthorizeRequest(params: URLSearchParams): string | undefined {
    if (params.get('response_type') !== 'code') return 'response_type must be code';
    if (!this.clientIds.includes(params.get('client_id') ?? '')) return `unknown client_id '${params.get('client_id') ?? ''}'`;
    const redirect = params.get('redirect_uri') ?? '';
    let target: URL;
    try {
      target = new URL(redirect);
    } catch {
      return 'redirect_uri must be an absolute URL';
    }
    // Only back to this stack, never to another origin.
    if (target.origin !== new URL(this.issuer).origin) return `redirect_uri must be on ${new URL(this.issuer).origin}`;
    if (!params.get('code_challenge')) return 'code_challenge is required (PKCE)';
    if (params.get('code_challenge_method') !== 'S256') return 'code_challenge_method must be S256';
    return undefined;
  }
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

function formOf(body: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(body));
}
