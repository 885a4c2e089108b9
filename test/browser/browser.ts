import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Real headless Chromium for the console's tests, driven by playwright-core.
 * The browser is the system's (Debian's `chromium`, which .ci/run installs) or
 * the one CHROMIUM_PATH names. Without one the tests fail, saying how to get it:
 * they never skip.
 */

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome-stable', '/usr/bin/google-chrome'];
// Flags that work in a container without a display or a sandbox, and keep Chromium off the network.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const SCREENSHOT_DIR = join(tmpdir(), 'vpce-gatekeeper-browser-tests');

/** The Chromium to drive: CHROMIUM_PATH, else the first of the usual system paths; throws saying how to get one. */
export function chromiumPath(options: { env?: NodeJS.ProcessEnv; candidates?: readonly string[] } = {}): string {
  const { env = process.env, candidates = CANDIDATES } = options;
  const configured = env.CHROMIUM_PATH;
  if (configured) {
    if (!existsSync(configured)) throw new Error(`CHROMIUM_PATH is ${configured}, which does not exist`);
    return configured;
  }
  const found = candidates.find((path) => existsSync(path));
  if (!found) {
    throw new Error(
      'The console tests need Chromium and found none (looked at ' +
        `${candidates.join(', ') || 'nothing'}). Install it: \`sudo apt-get update && sudo apt-get install -y chromium\` ` +
        '(Debian and Ubuntu; .ci/run does this), or set CHROMIUM_PATH to a Chromium or Chrome binary. See README, "Set up".',
    );
  }
  return found;
}

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: FLAGS });
}

/**
 * Runs `test` in a fresh browser context (its own cookies and storage). On a
 * failure, it saves a screenshot of the page and names its path in the error.
 */
export async function inPage(browser: Browser, name: string, test: (page: Page) => Promise<void>): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of (401|403|404|409|412)/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  page.setDefaultTimeout(15_000);
  try {
    await test(page);
    if (problems.length) throw new Error(`the page reported errors:\n${problems.join('\n')}`);
  } catch (error) {
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    const file = join(SCREENSHOT_DIR, `${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\n\nscreenshot of the page: ${file}${problems.length ? `\n${problems.join('\n')}` : ''}`, { cause: error });
  } finally {
    await context.close();
  }
}
