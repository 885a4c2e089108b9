import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { keys } from '../../lib/aws/table';
import { LOCAL_APPROVER, LOCAL_VIEWER, signedClient } from '../e2e/approvals-client';
import { heldBelowOu } from '../e2e/hostile-ou';
import { startLocalStack, type LocalStack } from '../e2e/local-stack';
import { inPage, launch } from './browser';
import { heldEndpoint, signIn } from './console-session';

// What a new user and an attacker found in the console: a phone's width, text that
// reads differently from what it is, a policy that no longer validates opening as if
// live, a save that revokes without asking, and pages that name things vaguely.

const ALLOWED = '111122223333';
const STRANGER = '999988887777';
const DEFAULT_POLICY = { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' };

let stack: LocalStack;
let browser: Browser;

beforeAll(async () => {
  [stack, browser] = await Promise.all([startLocalStack({ policy: { default: DEFAULT_POLICY } }), launch()]);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

/** What a person at 390 px would miss: sideways scrolling, things outside the screen, ids broken across lines. */
async function narrowLayoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const doc = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number }; querySelectorAll(s: string): ArrayLike<Element> } }).document;
    interface Element {
      textContent: string | null;
      getBoundingClientRect(): { left: number; right: number; width: number };
      getClientRects(): ArrayLike<unknown>;
    }
    const problems: string[] = [];
    const { scrollWidth, clientWidth } = doc.documentElement;
    if (scrollWidth > clientWidth) problems.push(`the page scrolls sideways: ${scrollWidth} px wide in ${clientWidth}`);
    for (const element of Array.from(doc.querySelectorAll('.id'))) {
      if (element.getClientRects().length > 1) problems.push(`id broken across lines: ${element.textContent}`);
      const box = element.getBoundingClientRect();
      if (box.right > clientWidth + 0.5) problems.push(`id past the right edge: ${element.textContent} ends at ${box.right}`);
    }
    for (const selector of ['[data-testid=who]', '.session button', '.top nav', 'table', 'textarea', '.dialog']) {
      for (const element of Array.from(doc.querySelectorAll(selector))) {
        const box = element.getBoundingClientRect();
        if (box.width > 0 && (box.left < -0.5 || box.right > clientWidth + 0.5)) problems.push(`${selector} is cut off: ${box.left}..${box.right}`);
      }
    }
    return problems;
  });
}

describe('the console at a phone width (390 px)', () => {
  it('loses nothing and never scrolls sideways: header, queue, services, a connection with its dialog, policies', async () => {
    const { serviceId, endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'narrow layout', async (page) => {
      await page.setViewportSize({ width: 390, height: 844 });
      await signIn(page, stack, LOCAL_APPROVER);

      await page.getByTestId('queue').waitFor();
      await expect(page.getByRole('button', { name: 'Sign out' }).isVisible()).resolves.toBe(true);
      await expect(page.getByTestId('who').isVisible()).resolves.toBe(true);
      expect(await narrowLayoutProblems(page)).toEqual([]);

      await page.getByRole('link', { name: 'Services' }).click();
      await page.getByTestId('services').waitFor();
      expect(await narrowLayoutProblems(page)).toEqual([]);

      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      await page.getByRole('button', { name: 'Accept…' }).click();
      await page.getByRole('dialog').waitFor();
      expect(await narrowLayoutProblems(page)).toEqual([]);

      await page.getByRole('link', { name: 'Policies' }).click();
      await page.getByRole('button', { name: 'Plan' }).click();
      await page.getByTestId('plan').waitFor();
      expect(await narrowLayoutProblems(page)).toEqual([]);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Credentials').waitFor();
    });
  });

  it('keeps ids whole in the queue at desktop widths too', async () => {
    await heldEndpoint(stack, STRANGER);
    for (const width of [800, 1050, 1150, 1280]) {
      await inPage(browser, `ids whole at ${width}`, async (page) => {
        await page.setViewportSize({ width, height: 900 });
        await signIn(page, stack, LOCAL_VIEWER);
        await page.getByTestId('queue').waitFor();
        expect(await narrowLayoutProblems(page)).toEqual([]);
      });
    }
  });
});

describe('text from elsewhere in the console', () => {
  it('isolates an OU name with terminal escapes and a right-to-left override, and shows the controls escaped', async () => {
    const { serviceId, endpointId } = await heldBelowOu(stack, STRANGER);

    await inPage(browser, 'bidi isolated', async (page) => {
      await signIn(page, stack, LOCAL_VIEWER);
      const why = page.getByTestId('queue').locator('td.why');
      await why.first().waitFor();
      const shown = {
        text: (await why.first().textContent()) ?? '',
        isolated: (await why.first().locator('bdi').count()) === 1,
        escapes: await why.first().locator('.escaped').allTextContents(),
      };

      expect(shown.isolated).toBe(true);
      expect(shown.text).toContain('Sandbox\\u001B[1A\\u001B[2K\\u001B]0;pwned\\u0007\\u202Eevil\\u009B');
      expect(shown.text).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(shown.escapes).toEqual(['\\u001B', '\\u001B', '\\u001B', '\\u0007', '\\u202E', '\\u009B']);

      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      const reason = page.getByTestId('decision').locator('.reason');
      await reason.waitFor();
      await expect(reason.textContent()).resolves.toContain('\\u202Eevil');
      await expect(reason.locator('bdi').count()).resolves.toBe(1);
    });
  });
});

describe('policies in the console', () => {
  it('opens a stored version that no longer validates as such: said on the page, in the versions and on the services, and replaceable', async () => {
    const { serviceId } = await heldEndpoint(stack, STRANGER);
    // A label an earlier release accepted, and this one refuses.
    const { db, tableName } = await stack.table();
    const document = { allow: [{ account: ALLOWED, label: 'acme\u202Eprod' }], onUnmatched: 'hold' };
    await db.send(
      new PutCommand({
        TableName: tableName,
        Item: { ...keys.policyVersion('default', 2), type: 'policy', policyId: 'default', version: 2, document: JSON.stringify(document), createdAt: new Date().toISOString(), createdBy: 'an-earlier-release' },
      }),
    );

    await inPage(browser, 'invalid stored policy', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.getByRole('link', { name: 'Services' }).click();
      const policyOfService = page.getByTestId('services').locator('tr', { hasText: serviceId }).getByTestId('policy-of-service');
      await expect(policyOfService.textContent()).resolves.toContain('default, version 2 (no longer validates');

      await page.getByRole('link', { name: 'Policies' }).click();
      const warning = page.getByTestId('invalid-policy');
      await warning.waitFor();
      await expect(warning.textContent()).resolves.toMatch(/^Version 2 no longer validates, so nothing is decided by it.*allow\[0\]\.label: must be one line/);
      await expect(page.getByTestId('problems').textContent()).resolves.toContain('allow[0].label');
      await expect(page.locator('table.list').last().textContent()).resolves.toMatch(/no: invalid policy/);

      await page.locator('textarea[name=policy]').fill(`allow:\n  - account: "${ALLOWED}"\n    label: acme-prod\nonUnmatched: hold\n`);
      await page.getByRole('button', { name: 'Plan' }).click();
      await page.getByTestId('plan-unreadable').waitFor();
      await page.getByRole('button', { name: 'Save over version 2' }).click();
      await page.getByRole('button', { name: 'Save without a plan' }).click();
      await page.getByTestId('policy-note').filter({ hasText: 'Saved version 3.' }).waitFor();
      await page.getByTestId('current-version').filter({ hasText: /^Version 3,/ }).waitFor();
      await page.getByTestId('invalid-policy').waitFor({ state: 'detached' });
    });
  });

  it('asks before saving a policy whose plan revokes or rejects, then clears the plan and says when it takes effect', async () => {
    const { endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'confirm a rejecting save', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.getByRole('link', { name: 'Policies' }).click();
      // An account id without quotes is a number to YAML: said at its line, as written and as read.
      await page.locator('textarea[name=policy]').fill(`allow:\n  - account: 012345678901\nonUnmatched: reject\n`);
      await expect(page.getByTestId('problems').textContent()).resolves.toBe(
        'allow[0].account (line 2): the account id 012345678901 is not in quotes, so YAML reads it as the number 12345678901: write account: "012345678901"',
      );
      await page.locator('textarea[name=policy]').fill(`allow:\n  - account: "${ALLOWED}"\n    label: acme-prod\nonUnmatched: reject\n`);
      await page.getByRole('button', { name: 'Plan' }).click();
      await page.getByTestId('plan').waitFor();

      await page.getByRole('button', { name: 'Save over version 1' }).click();
      const dialog = page.getByRole('dialog');
      await expect(dialog.getByTestId('save-consequence').textContent()).resolves.toBe(
        "At the reconciler's next run this rejects 1 waiting request: to ask again, the consumers must create new endpoints. This cannot be undone.",
      );
      await expect(dialog.textContent()).resolves.toContain(`reject ${endpointId} of account ${STRANGER}`);
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await expect(page.getByTestId('current-version').textContent()).resolves.toMatch(/^Version 1,/);

      await page.getByRole('button', { name: 'Save over version 1' }).click();
      await page.getByRole('button', { name: 'Save, and reject 1' }).click();
      const note = page.getByTestId('policy-note').filter({ hasText: 'Saved version 2.' });
      await note.waitFor();
      await expect(note.textContent()).resolves.toContain("takes effect at the reconciler's next run");
      expect(await page.getByTestId('plan').count()).toBe(0);
      expect(await page.getByRole('dialog').count()).toBe(0);
    });
  });

  it("names each service's policy on the Services page, and heads a viewer's policy page as what it is", async () => {
    const { serviceId: governedByDefault } = await stack.createService();
    const { serviceId: withItsOwn } = await stack.createService();
    const put = await signedClient(stack.baseUrl, LOCAL_APPROVER).request('PUT', `/policies/${withItsOwn}`, { body: { mode: 'manual' } });
    expect(put.status).toBe(201);

    await inPage(browser, 'policy names and viewer heading', async (page) => {
      await signIn(page, stack, LOCAL_VIEWER);
      await page.getByRole('link', { name: 'Services' }).click();
      const policyOf = (serviceId: string) => page.getByTestId('services').locator('tr', { hasText: serviceId }).getByTestId('policy-of-service').textContent();
      await expect(policyOf(governedByDefault)).resolves.toBe('default, version 1 · give it its own');
      await expect(policyOf(withItsOwn)).resolves.toBe('its own, version 1');

      await page.getByRole('link', { name: 'Policies' }).click();
      await page.getByRole('heading', { name: 'Policy (read only)' }).waitFor();
      expect(await page.getByRole('heading', { name: 'Edit' }).count()).toBe(0);
      expect(await page.locator('textarea[name=policy]').getAttribute('readonly')).not.toBeNull();
    });
  });
});

describe('where a service lives', () => {
  it("shows the provider's account and the service's Region on the services page and on a connection's page", async () => {
    const { serviceId, endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'service in', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.getByRole('link', { name: 'Services' }).click();
      const row = page.getByTestId('services').locator('tr', { hasText: serviceId });
      await row.waitFor();
      await expect(row.locator('td[data-label="In"]').textContent()).resolves.toMatch(/000000000000.*us-east-1/);

      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      await page.getByTestId('service-in').waitFor();
      await expect(page.getByTestId('service-in').textContent()).resolves.toMatch(/000000000000.*us-east-1/);
    });
  });
});
