import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiKey, configDir, readTokens, removeTokens, saveTokens, tokenFile, type SsoTokens } from '../../../cli/token-cache';

// Where `vpce-gatekeeper login` keeps tokens, and how: one file per API, readable by the user alone.

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-tokens-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tokens = (api: string): SsoTokens => ({
  api: apiKey(api),
  issuer: 'https://issuer.example.com',
  clientId: 'cli',
  accessToken: 'a.b.c',
  refreshToken: 'r',
  expiresAt: '2030-01-01T00:00:00.000Z',
});

describe('the token cache', () => {
  it("is in the user's configuration directory of each platform, or where VPCE_GATEKEEPER_CONFIG_DIR says", () => {
    expect(configDir({ VPCE_GATEKEEPER_CONFIG_DIR: '/x' }, 'linux', '/home/u')).toBe('/x');
    expect(configDir({}, 'linux', '/home/u')).toBe('/home/u/.config/vpce-gatekeeper');
    expect(configDir({ XDG_CONFIG_HOME: '/cfg' }, 'linux', '/home/u')).toBe('/cfg/vpce-gatekeeper');
    expect(configDir({}, 'darwin', '/Users/u')).toBe('/Users/u/Library/Application Support/vpce-gatekeeper');
  });

  it('keeps each API apart, the same API under any spelling of its URL, in files only the user can read', async () => {
    await saveTokens(tokens('https://a.example.com/'), dir);
    await saveTokens({ ...tokens('https://b.example.com/prod'), accessToken: 'other' }, dir);

    expect((await readTokens('https://a.example.com', dir))?.accessToken).toBe('a.b.c');
    expect((await readTokens('https://b.example.com/prod/', dir))?.accessToken).toBe('other');
    expect(await readTokens('https://c.example.com', dir)).toBeUndefined();
    expect((await stat(tokenFile('https://a.example.com', dir))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'sso'))).mode & 0o777).toBe(0o700);
  });

  it('replaces a file whole, leaving no temporary file behind', async () => {
    await saveTokens(tokens('https://a.example.com'), dir);
    await saveTokens({ ...tokens('https://a.example.com'), accessToken: 'newer' }, dir);

    expect((await readTokens('https://a.example.com', dir))?.accessToken).toBe('newer');
    expect(await readdir(join(dir, 'sso'))).toHaveLength(1);
  });

  it('treats a file that is not its own (garbled, or for another API) as no sign-in', async () => {
    await saveTokens(tokens('https://a.example.com'), dir);
    await writeFile(tokenFile('https://a.example.com', dir), '{not json');

    expect(await readTokens('https://a.example.com', dir)).toBeUndefined();
  });

  it('forgets an API, and says whether there was anything to forget', async () => {
    await saveTokens(tokens('https://a.example.com'), dir);

    expect(await removeTokens('https://a.example.com', dir)).toBe(true);
    expect(await removeTokens('https://a.example.com', dir)).toBe(false);
    expect(await readTokens('https://a.example.com', dir)).toBeUndefined();
  });
});
