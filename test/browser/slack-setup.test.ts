import type { Browser } from 'playwright-core';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_VIEWER } from '../e2e/approvals-client';
import { startLocalStack, type LocalStack } from '../e2e/local-stack';
import { inPage, launch } from './browser';

// The console's Slack page: how to connect this stage to Slack, in a real browser.

let stack: LocalStack;
let browser: Browser;

beforeAll(async () => {
  [stack, browser] = await Promise.all([startLocalStack(), launch()]);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe("the console's Slack page", () => {
  it("says Slack is on and where requests go, and gives the app manifest with this stage's interactivity URL", async () => {
    await inPage(browser, 'the Slack setup page', async (page) => {
      await page.goto(`${stack.baseUrl}/console`);
      await page.getByLabel('Credentials').fill(JSON.stringify({ AccessKeyId: LOCAL_VIEWER.accessKeyId, SecretAccessKey: LOCAL_VIEWER.secretAccessKey }));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('link', { name: 'Slack' }).click();

      await expect(page.getByRole('status').textContent()).resolves.toMatch(/On for this stage: held requests are posted to channel C0LOCALAPPROVALS/);
      const manifest = parse((await page.getByTestId('slack-manifest').textContent()) ?? '') as { settings: { interactivity: { request_url: string } }; oauth_config: { scopes: { bot: string[] } } };
      expect(manifest.settings.interactivity.request_url).toBe(`${stack.baseUrl}/chat/slack/interactions`);
      expect(manifest.oauth_config.scopes.bot).toEqual(['chat:write', 'usergroups:read']);
      for (const parameter of ['slackChannel', 'slackBotTokenParameter', 'slackSigningSecretParameter', 'slackApprovers']) {
        await expect(page.getByRole('cell', { name: parameter, exact: true }).count()).resolves.toBe(1);
      }
    });
  });

  it('fits a phone (390 px): the page never scrolls sideways, the long URL breaks, the commands scroll in their boxes', async () => {
    await inPage(browser, 'the Slack setup page at 390 px', async (page) => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${stack.baseUrl}/console`);
      await page.getByLabel('Credentials').fill(JSON.stringify({ AccessKeyId: LOCAL_VIEWER.accessKeyId, SecretAccessKey: LOCAL_VIEWER.secretAccessKey }));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.goto(`${stack.baseUrl}/console#/slack`);
      await page.getByTestId('slack-manifest').waitFor();

      const widths = await page.evaluate(() => {
        const doc = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number }; querySelector(s: string): { getBoundingClientRect(): { right: number } } | null } }).document;
        return { scroll: doc.documentElement.scrollWidth, client: doc.documentElement.clientWidth, table: doc.querySelector('table')?.getBoundingClientRect().right ?? 0 };
      });
      expect(widths.scroll).toBeLessThanOrEqual(widths.client);
      expect(widths.table).toBeLessThanOrEqual(widths.client + 0.5);
    });
  });
});
