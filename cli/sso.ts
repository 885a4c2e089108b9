import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { CliError } from './cli-error';
import { apiKey, type SsoTokens } from './token-cache';

/**
 * Signing in to a stage whose API is behind a JWT authorizer (SSO), as
 * `aws sso login` does for IAM Identity Center: the OpenID Connect authorization
 * code flow with PKCE, the browser sent back to a loopback redirect
 * (http://127.0.0.1:<port>/callback) that this process listens on. The protocol
 * steps (discovery, state, PKCE, the token response and ID token checks,
 * refresh, revocation) are oauth4webapi's.
 */

/** What the stage says about signing in (GET /console/config.json), for the CLI. */
export interface SsoSettings {
  issuer: string;
  clientId: string;
  /** An exact redirect URI the issuer has registered for the CLI; else a free loopback port. */
  redirectUri?: string;
}

export interface LoginOptions {
  /** Open the sign-in page in the browser; false: only print its URL. */
  openBrowser: boolean;
  /** Where to say what is happening (the URL to open, among others). */
  say: (line: string) => void;
  /** How long to wait for the browser to come back. */
  timeoutMs?: number;
}

const LOGIN_TIMEOUT_MS = 5 * 60_000;

/** Signs in through the issuer's page in the browser; the tokens for `api`, not yet saved. */
export async function login(api: string, settings: SsoSettings, options: LoginOptions): Promise<SsoTokens> {
  const as = await discover(settings.issuer);
  const client: oauth.Client = { client_id: settings.clientId };
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const loopback = await listenForCallback(settings.redirectUri);
  try {
    if (!as.authorization_endpoint) throw new CliError(`the issuer ${settings.issuer} names no authorization_endpoint`);
    const authorize = new URL(as.authorization_endpoint);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: settings.clientId,
      redirect_uri: loopback.redirectUri,
      scope: 'openid profile',
      state,
      nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    if (options.openBrowser) {
      options.say(`Opening the sign-in page of ${settings.issuer} in your browser. If it does not open, open this URL on this machine:`);
      openBrowser(authorize.toString());
    } else {
      options.say(`Open this URL in a browser on this machine to sign in (${settings.issuer}):`);
    }
    options.say(`\n  ${authorize.toString()}\n`);
    options.say(`Waiting for the browser to come back to ${loopback.redirectUri} (Ctrl-C to give up)…`);
    const callback = await loopback.next(options.timeoutMs ?? LOGIN_TIMEOUT_MS, (url) => {
      try {
        return { ok: true, params: oauth.validateAuthResponse(as, client, url, state) };
      } catch (error) {
        return { ok: false, message: describe(error) };
      }
    });
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), callback, loopback.redirectUri, verifier, insecure(settings.issuer));
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true }).catch(rethrow('the token endpoint refused the sign-in'));
    return tokensFrom(api, settings, tokens);
  } finally {
    await loopback.close();
  }
}

/** New tokens from the refresh token, when the issuer gave one; throws CliError when it refuses. */
export async function refresh(tokens: SsoTokens): Promise<SsoTokens> {
  if (!tokens.refreshToken) throw new CliError(`the sign-in to ${tokens.api} expired at ${tokens.expiresAt}`);
  const as = await discover(tokens.issuer);
  const client: oauth.Client = { client_id: tokens.clientId };
  const response = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refreshToken, insecure(tokens.issuer));
  const fresh = await oauth.processRefreshTokenResponse(as, client, response).catch(rethrow(`the issuer refused to refresh the sign-in to ${tokens.api}`));
  // An issuer that does not rotate refresh tokens answers without one: the old one stays good.
  return { ...tokensFrom(tokens.api, tokens, fresh), refreshToken: fresh.refresh_token ?? tokens.refreshToken };
}

/** Asks the issuer to revoke the refresh token (RFC 7009), when it has a revocation endpoint; failures are the caller's to report. */
export async function revoke(tokens: SsoTokens): Promise<boolean> {
  if (!tokens.refreshToken) return false;
  const as = await discover(tokens.issuer);
  if (!as.revocation_endpoint) return false;
  const response = await oauth.revocationRequest(as, { client_id: tokens.clientId }, oauth.None(), tokens.refreshToken, {
    ...insecure(tokens.issuer),
    additionalParameters: { token_type_hint: 'refresh_token' },
  });
  await oauth.processRevocationResponse(response).catch(rethrow('the issuer refused to revoke the refresh token'));
  return true;
}

function tokensFrom(api: string, settings: SsoSettings, response: oauth.TokenEndpointResponse): SsoTokens {
  if (response.token_type !== 'bearer') throw new CliError(`the issuer answered a ${response.token_type} token; the API takes bearer tokens`);
  const claims = oauth.getValidatedIdTokenClaims(response);
  return {
    api: apiKey(api),
    issuer: settings.issuer,
    clientId: settings.clientId,
    accessToken: response.access_token,
    ...(response.refresh_token ? { refreshToken: response.refresh_token } : {}),
    ...(response.id_token ? { idToken: response.id_token } : {}),
    expiresAt: new Date(Date.now() + (response.expires_in ?? 3600) * 1000).toISOString(),
    ...(claims ? { subject: claims.sub } : {}),
    ...(typeof claims?.name === 'string' ? { name: claims.name } : {}),
  };
}

async function discover(issuer: string): Promise<oauth.AuthorizationServer> {
  const issuerUrl = new URL(issuer);
  try {
    return await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, { ...insecure(issuer), algorithm: 'oidc' }));
  } catch (error) {
    throw new CliError(`cannot read the OpenID Connect discovery document of ${issuer}: ${describe(error)}`, 1, { cause: error });
  }
}

/**
 * Plain http only to an issuer on this machine (the local stack's); anywhere else
 * oauth4webapi insists on https.
 */
function insecure(issuer: string): { [oauth.allowInsecureRequests]?: boolean } {
  return isLoopback(new URL(issuer).hostname) ? { [oauth.allowInsecureRequests]: true } : {};
}

function isLoopback(hostname: string): boolean {
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}

type CallbackCheck = { ok: true; params: URLSearchParams } | { ok: false; message: string };

interface Loopback {
  redirectUri: string;
  /** The first callback that passes `check`; answers the browser either way. */
  next(timeoutMs: number, check: (url: URL) => CallbackCheck): Promise<URLSearchParams>;
  close(): Promise<void>;
}

/**
 * A server on the loopback interface for the browser's return: on the given
 * redirect URI's port and path, or a free port and /callback on 127.0.0.1.
 */
async function listenForCallback(registered: string | undefined): Promise<Loopback> {
  const wanted = new URL(registered ?? 'http://127.0.0.1:0/callback');
  if (wanted.protocol !== 'http:' || !isLoopback(wanted.hostname)) {
    throw new CliError(`the redirect URI ${wanted.href} is not a loopback http address (127.0.0.1, [::1] or localhost)`);
  }
  // localhost may resolve to either address in the browser: listen on both.
  const hosts = wanted.hostname === 'localhost' ? ['127.0.0.1', '::1'] : [wanted.hostname.replace(/^\[|\]$/g, '')];
  let settle: ((outcome: { params?: URLSearchParams; error?: Error }) => void) | undefined;
  let check: ((url: URL) => CallbackCheck) | undefined;
  const servers: Server[] = [];
  const onRequest = (request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse) => {
    const url = new URL(request.url ?? '/', `http://${wanted.host}`);
    if (request.method !== 'GET' || url.pathname !== wanted.pathname || !check || !settle) {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    const result = check(url);
    const title = result.ok ? 'Signed in to vpce-gatekeeper' : 'Sign-in failed';
    const text = result.ok ? 'You can close this tab and go back to the terminal.' : result.message;
    response
      .writeHead(result.ok ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'" })
      .end(`<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>\n`);
    settle(result.ok ? { params: result.params } : { error: new CliError(`sign-in failed: ${result.message}`) });
  };
  let port = Number(wanted.port || 0);
  for (const host of hosts) {
    const server = createServer(onRequest);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
    } catch (error) {
      // A second address (::1 for localhost) that this machine lacks is no loss; the first one must work.
      if (servers.length) continue;
      const code = (error as NodeJS.ErrnoException).code;
      throw new CliError(`cannot listen on ${host}:${port} for the sign-in to come back (${code ?? String(error)})${code === 'EADDRINUSE' ? ': is another login running?' : ''}`);
    }
    port = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  const redirect = new URL(wanted.href);
  redirect.port = String(port);
  return {
    redirectUri: redirect.href,
    next: (timeoutMs, validate) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new CliError(`no sign-in came back within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
        check = validate;
        settle = ({ params, error }) => {
          clearTimeout(timer);
          settle = undefined;
          if (params) resolve(params);
          else reject(error);
        };
      }),
    close: async () => {
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}

/** Opens a URL in the user's browser, as the platform does; a failure leaves the printed URL to the user. */
function openBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['rundll32', ['url.dll,FileProtocolHandler', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(command, args, { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // The URL is printed: the user opens it.
  }
}

function rethrow(what: string): (error: unknown) => never {
  return (error) => {
    throw new CliError(`${what}: ${describe(error)}`, 1, { cause: error });
  };
}

function describe(error: unknown): string {
  if (error instanceof oauth.ResponseBodyError || error instanceof oauth.AuthorizationResponseError) {
    return `${error.error}${error.error_description ? ` (${error.error_description})` : ''}`;
  }
  if (error instanceof CliError) return error.message;
  if (error instanceof Error) return error.cause instanceof Error ? `${error.message} (${error.cause.message})` : error.message;
  return String(error);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
