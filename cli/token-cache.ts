import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What `vpce-gatekeeper login` keeps for one API: the issuer's tokens and what they are for. */
export interface SsoTokens {
  /** The API they sign in to (its base URL, as apiKey writes it). */
  api: string;
  issuer: string;
  clientId: string;
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  /** When the access token expires (ISO 8601). */
  expiresAt: string;
  /** Who signed in: the ID token's subject, and name when it has one. */
  subject?: string;
  name?: string;
}

/**
 * The user's configuration directory for the CLI: VPCE_GATEKEEPER_CONFIG_DIR
 * when set, else the platform's (XDG_CONFIG_HOME or ~/.config on Linux,
 * ~/Library/Application Support on macOS, %APPDATA% on Windows).
 */
export function configDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home = homedir()): string {
  if (env.VPCE_GATEKEEPER_CONFIG_DIR) return env.VPCE_GATEKEEPER_CONFIG_DIR;
  if (platform === 'win32') return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'vpce-gatekeeper');
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'vpce-gatekeeper');
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'vpce-gatekeeper');
}

/** An API's base URL as one key: origin and path, without a trailing slash. */
export function apiKey(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Where the tokens for an API are kept: one file per API, named by a hash of its URL. */
export function tokenFile(baseUrl: string, dir = configDir()): string {
  return join(dir, 'sso', `${createHash('sha256').update(apiKey(baseUrl)).digest('hex').slice(0, 32)}.json`);
}

/** The tokens kept for an API; undefined when there are none, or the file is not what `saveTokens` writes. */
export async function readTokens(baseUrl: string, dir = configDir()): Promise<SsoTokens | undefined> {
  let text: string;
  try {
    text = await readFile(tokenFile(baseUrl, dir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const tokens = JSON.parse(text) as SsoTokens;
    return tokens.api === apiKey(baseUrl) && typeof tokens.accessToken === 'string' ? tokens : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keeps an API's tokens, readable by the user alone: the directory 0700, the
 * file 0600, written whole to a temporary file and renamed over the old one.
 */
export async function saveTokens(tokens: SsoTokens, dir = configDir()): Promise<string> {
  const file = tokenFile(tokens.api, dir);
  const folder = join(dir, 'sso');
  await mkdir(folder, { recursive: true, mode: 0o700 });
  await chmod(folder, 0o700);
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(tokens, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return file;
}

/** Forgets an API's tokens; whether there were any. */
export async function removeTokens(baseUrl: string, dir = configDir()): Promise<boolean> {
  const file = tokenFile(baseUrl, dir);
  try {
    await rm(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
