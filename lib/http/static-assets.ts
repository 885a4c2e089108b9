import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '../errors';
import type { Config } from '../config';
import { NOSNIFF, type HttpResponse } from './responses';

/** What the console needs to know before anyone signs in: how to sign in, and where. */
export interface ConsoleSettings {
  auth: 'iam' | 'jwt';
  /** The region SigV4 signs for (IAM). */
  region: string;
  /** The OpenID Connect issuer and the console's client id there (JWT). */
  issuer?: string;
  clientId?: string;
  /** The CLI's client id there, and its redirect URI when the issuer needs an exact one (`vpce-gatekeeper login`). */
  cliClientId?: string;
  cliRedirectUri?: string;
  /** Origins the browser may fetch from besides the API: the issuer's, and its token endpoint's. */
  authOrigins: string[];
  /** The Slack channel approval requests are posted to, when the stage has Slack approvals (docs/slack.md). */
  slackChannel?: string;
}

/** The console's settings from the stage's: OpenID Connect when it has a JWT issuer, else SigV4. */
export function consoleSettingsOf(
  config: Pick<Config, 'JWT_ISSUER_URL' | 'CONSOLE_CLIENT_ID' | 'CLI_CLIENT_ID' | 'CLI_REDIRECT_URI' | 'CONSOLE_AUTH_ORIGIN' | 'AWS_REGION'> & Partial<Pick<Config, 'SLACK_CHANNEL'>>,
): ConsoleSettings {
  const settings = signInSettingsOf(config);
  return config.SLACK_CHANNEL ? { ...settings, slackChannel: config.SLACK_CHANNEL } : settings;
}

function signInSettingsOf(
  config: Pick<Config, 'JWT_ISSUER_URL' | 'CONSOLE_CLIENT_ID' | 'CLI_CLIENT_ID' | 'CLI_REDIRECT_URI' | 'CONSOLE_AUTH_ORIGIN' | 'AWS_REGION'>,
): ConsoleSettings {
  const { JWT_ISSUER_URL, CONSOLE_CLIENT_ID, CLI_CLIENT_ID, CLI_REDIRECT_URI, CONSOLE_AUTH_ORIGIN, AWS_REGION } = config;
  if (!JWT_ISSUER_URL) return { auth: 'iam', region: AWS_REGION, authOrigins: [] };
  const origins = [new URL(JWT_ISSUER_URL).origin, ...(CONSOLE_AUTH_ORIGIN ? [new URL(CONSOLE_AUTH_ORIGIN).origin] : [])];
  return {
    auth: 'jwt',
    region: AWS_REGION,
    issuer: JWT_ISSUER_URL,
    clientId: CONSOLE_CLIENT_ID,
    cliClientId: CLI_CLIENT_ID || CONSOLE_CLIENT_ID,
    ...(CLI_REDIRECT_URI ? { cliRedirectUri: CLI_REDIRECT_URI } : {}),
    authOrigins: [...new Set(origins)],
  };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};
const ASSET_NAME = /^[a-z0-9][a-z0-9.-]*\.(js|css|png|svg|ico|map)$/;
const cache = new Map<string, Buffer>();

/**
 * The Content-Security-Policy of every console response: scripts and styles
 * only from the API's own origin (no inline script), data only from it and the
 * sign-in provider, never framed.
 */
export function consoleCsp(settings: ConsoleSettings): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${settings.authOrigins.map((origin) => ` ${origin}`).join('')}`,
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * One file of the console's build (console/dist beside the handler): its page
 * for `GET /console`, a named asset, or its settings as config.json. Anything
 * else is NotFoundError.
 */
export async function consoleAsset(distDir: URL, asset: string | undefined, settings: ConsoleSettings): Promise<HttpResponse> {
  const headers = {
    'content-security-policy': consoleCsp(settings),
    ...NOSNIFF,
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
  };
  if (asset === 'config.json') {
    return { statusCode: 200, headers: { ...headers, 'content-type': 'application/json', 'cache-control': 'no-store' }, body: JSON.stringify(settings) };
  }
  const name = asset ?? 'index.html';
  if (asset !== undefined && !ASSET_NAME.test(asset)) throw new NotFoundError(`the console has no file ${asset}`);
  const bytes = await read(new URL(name, distDir));
  if (!bytes) throw new NotFoundError(`the console has no file ${name}`);
  return {
    statusCode: 200,
    headers: { ...headers, 'content-type': CONTENT_TYPES[extname(name)] ?? 'application/octet-stream', 'cache-control': 'no-cache' },
    body: bytes.toString('base64'),
    isBase64Encoded: true,
  };
}

/**
 * What no route of the API takes (its `$default` route): `/console/`, typed with a slash, is sent to
 * the page's one address, `/console` (relative, so that it holds under any base path: the page's
 * assets are named relative to it); anything else is the API's own 404, with nosniff, where API
 * Gateway's own would carry no such header.
 */
export function unrouted(request: { method: string; rawPath: string }): HttpResponse {
  if (request.method === 'GET' && request.rawPath === '/console/') {
    return { statusCode: 308, headers: { location: '../console', ...NOSNIFF, 'cache-control': 'no-cache' }, body: '' };
  }
  throw new NotFoundError(`no route for ${request.method} ${request.rawPath}`);
}

async function read(file: URL): Promise<Buffer | undefined> {
  const path = fileURLToPath(file);
  let bytes = cache.get(path);
  if (!bytes) {
    try {
      bytes = await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    cache.set(path, bytes);
  }
  return bytes;
}
