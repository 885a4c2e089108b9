import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_APPROVER, LOCAL_APPROVER_ARN, LOCAL_VIEWER, signedClient } from '../e2e/approvals-client';
import { startLocalStack, type LocalStack } from '../e2e/local-stack';
import { inPage, launch } from './browser';
import { heldEndpoint, signIn } from './console-session';

// The approvals console in headless Chromium, against `npm start` (SigV4 mode):
// the page signs every request in the browser with the pasted credentials.

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

async function ec2State(serviceId: string, endpointId: string): Promise<string | undefined> {
  return (await stack.listEndpoints(serviceId)).find((e) => e.vpcEndpointId === endpointId)?.state;
}

describe('the approvals console', () => {
  it('signs in with pasted temporary credentials, kept in session storage only, and shows who and which role', async () => {
    await inPage(browser, 'sign in with SigV4 credentials', async (page) => {
      await page.goto(`${stack.baseUrl}/console`);
      await expect(page.getByTestId('storage-note').textContent()).resolves.toMatch(/session storage only/);

      await signIn(page, stack, LOCAL_APPROVER);

      await expect(page.getByTestId('who').textContent()).resolves.toBe(`${LOCAL_APPROVER_ARN} · approver · SigV4`);
      // In the page: its storages (globalThis there is the window).
      const storage = await page.evaluate(() => {
        const { sessionStorage, localStorage } = globalThis as unknown as { sessionStorage: { length: number; key(i: number): string | null }; localStorage: { length: number } };
        return { session: Array.from({ length: sessionStorage.length }, (_, i) => sessionStorage.key(i)), local: localStorage.length };
      });
      expect(storage).toEqual({ session: ['vpce-gatekeeper.session'], local: 0 });
    });
  });

  it('refuses credentials the API does not know, saying so', async () => {
    await inPage(browser, 'unknown credentials', async (page) => {
      await page.goto(`${stack.baseUrl}/console`);
      await page.getByLabel('Credentials').fill('export AWS_ACCESS_KEY_ID=AKIANOBODY\nexport AWS_SECRET_ACCESS_KEY=wrong');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toMatch(/sign-in refused/);
    });
  });

  it('accepts a held request with a reason after saying what will happen, and EC2 admits it', async () => {
    const { serviceId, endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'accept a held request', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.getByTestId('queue').getByRole('link', { name: endpointId }).click();
      await page.getByRole('button', { name: 'Accept…' }).click();
      await expect(page.locator('.consequence').textContent()).resolves.toContain(`EC2 accepts endpoint ${endpointId} of account ${STRANGER}`);
      const confirm = page.getByRole('button', { name: 'Accept connection' });
      expect(await confirm.isDisabled()).toBe(true); // a reason is required

      await page.getByLabel(/Reason/).fill('ticket NET-42');
      await confirm.click();

      await expect(page.getByTestId('outcome').textContent()).resolves.toMatch(new RegExp(`^Accepted ${endpointId}: EC2 now shows it (pending|available)`));
      await stack.waitFor(async () => (await ec2State(serviceId, endpointId)) === 'available', { description: 'EC2 admits the endpoint' });
      await page.reload();
      await expect(page.getByTestId('history').textContent()).resolves.toContain(`accept by ${LOCAL_APPROVER_ARN} (approver): ticket NET-42`);
    });
  });

  it('rejects a held request with a reason', async () => {
    const { serviceId, endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'reject a held request', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      await page.getByRole('button', { name: 'Reject…' }).click();
      await page.getByLabel(/Reason/).fill('unknown customer');
      await page.getByRole('button', { name: 'Reject connection' }).click();

      await expect(page.getByTestId('outcome').textContent()).resolves.toContain(`Rejected ${endpointId}: EC2 now shows it rejected`);
      expect(await ec2State(serviceId, endpointId)).toBe('rejected');
      await page.getByTestId('decision').filter({ hasText: 'unknown customer' }).waitFor();
    });
  });

  it('revokes an admitted connection with a reason', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    await stack.waitFor(async () => (await ec2State(serviceId, endpointId)) === 'available' && (await stack.idle()));
    await inPage(browser, 'revoke an admitted connection', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      expect(await page.getByRole('button', { name: 'Accept…' }).count()).toBe(0);
      await page.getByRole('button', { name: 'Revoke…' }).click();
      await expect(page.locator('.consequence').textContent()).resolves.toContain('loses access through it at once');
      await page.getByLabel(/Reason/).fill('contract ended');
      await page.getByRole('button', { name: 'Revoke connection' }).click();

      await expect(page.getByTestId('outcome').textContent()).resolves.toContain(`Revoked ${endpointId}`);
      expect(await ec2State(serviceId, endpointId)).toBe('rejected');
    });
  });

  it('explains a lost race in plain words: accepted by whom, when, while you were looking', async () => {
    const { serviceId, endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'lose a race', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      await page.getByRole('button', { name: 'Reject…' }).click();
      await page.getByLabel(/Reason/).fill('too slow');

      // Someone else accepts it while the dialog is open.
      const other = await signedClient(stack.baseUrl, LOCAL_APPROVER).request('POST', `/services/${serviceId}/connections/${endpointId}/accept`, { body: { reason: 'first!' } });
      expect(other.status).toBe(200);
      await page.getByRole('button', { name: 'Reject connection' }).click();

      const outcome = await page.getByTestId('outcome').textContent();
      expect(outcome).toMatch(new RegExp(`^Not rejected: Accepted by ${LOCAL_APPROVER_ARN.replace(/[/]/g, '\\/')} at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC while you were looking \\("first!"\\)`));
      expect(await ec2State(serviceId, endpointId)).not.toBe('rejected');
    });
  });

  it('edits a policy with errors shown at the field, reads the plan, saves it, and meets a 412 when someone saved first', async () => {
    const { endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'edit plan save 412', async (page) => {
      await signIn(page, stack, LOCAL_APPROVER);
      await page.getByRole('link', { name: 'Policies' }).click();
      await expect(page.getByTestId('current-version').textContent()).resolves.toMatch(/^Version 1, by /);
      const editor = page.locator('textarea[name=policy]');

      await editor.fill(`mode: auto\nallow:\n  - account: "${ALLOWED}"\n    label: acme-prod\n  - account: "12345"\nonUnmatched: sometimes\n`);
      const problems = page.getByTestId('problems');
      await expect(problems.textContent()).resolves.toContain('allow[1].account (line 5): must be a 12-digit AWS account id');
      await expect(problems.textContent()).resolves.toContain('onUnmatched (line 6): must be hold or reject');
      expect(await page.getByRole('button', { name: 'Plan' }).isDisabled()).toBe(true);

      await editor.fill(`mode: auto\nallow:\n  - account: "${ALLOWED}"\n    label: acme-prod\n  - account: "${STRANGER}"\n    label: newcomer\nonUnmatched: hold\n`);
      expect(await page.getByRole('button', { name: /^Save/ }).isDisabled()).toBe(true); // not before a plan
      await page.getByRole('button', { name: 'Plan' }).click();
      const plan = page.getByTestId('plan');
      await expect(plan.locator('.summary').textContent()).resolves.toMatch(/^1 to accept 0 to reject 0 to revoke 0 held/);
      await expect(plan.locator('tbody tr').first().textContent()).resolves.toContain(endpointId);

      await page.getByRole('button', { name: 'Save over version 1' }).click();
      await page.getByTestId('policy-note').filter({ hasText: 'Saved version 2.' }).waitFor();
      await page.getByTestId('current-version').filter({ hasText: /^Version 2, by / }).waitFor();
      await page.getByTestId('diff').locator('.add').filter({ hasText: STRANGER }).waitFor();

      // Someone else saves version 3 while this page still edits version 2.
      const other = await signedClient(stack.baseUrl, LOCAL_APPROVER).request('PUT', '/policies/default', { body: DEFAULT_POLICY, headers: { 'if-match': '"2"' } });
      expect(other.status).toBe(200);
      await editor.fill(`allow: []\nonUnmatched: hold\n`);
      await page.getByRole('button', { name: 'Plan' }).click();
      await page.getByRole('button', { name: 'Save over version 2' }).click();
      await page.getByTestId('policy-note').filter({ hasText: /^Not saved/ }).waitFor();
      await expect(page.getByTestId('policy-note').textContent()).resolves.toMatch(
        new RegExp(`^Not saved: someone saved first\\. Version 3 was saved by ${LOCAL_APPROVER_ARN.replace(/[/]/g, '\\/')} at .* while you were editing version 2`),
      );
      expect(await editor.inputValue()).toBe('allow: []\nonUnmatched: hold\n');
    });
  });

  it('shows a viewer no write actions, and the API refuses them anyway', async () => {
    const { serviceId, endpointId } = await heldEndpoint(stack, STRANGER);
    await inPage(browser, 'viewer has no write buttons', async (page) => {
      await signIn(page, stack, LOCAL_VIEWER);
      await expect(page.getByTestId('who').textContent()).resolves.toContain('local-viewer · viewer');
      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      await page.getByTestId('history').waitFor();
      expect(await page.getByRole('button', { name: /Accept|Reject|Revoke/ }).count()).toBe(0);
      await page.goto(`${stack.baseUrl}/console#/policies/default`);
      // Planning reads EC2 for every governed connection: approvers only, and the page says why.
      await expect(page.getByTestId('viewer-plan-hint').textContent()).resolves.toMatch(/Only approvers can plan and save: .*EC2/);
      expect(await page.getByRole('button', { name: /^(Plan|Save)/ }).count()).toBe(0);
    });
    const viewer = signedClient(stack.baseUrl, LOCAL_VIEWER);
    const refused = await viewer.request('POST', `/services/${serviceId}/connections/${endpointId}/accept`, { body: { reason: 'x' } });
    expect(refused.status).toBe(403);
    const planRefused = await viewer.request('POST', '/policies/default/plan', { body: DEFAULT_POLICY });
    expect(planRefused.status).toBe(403);
  });

  it('serves the page and its assets with a strict Content-Security-Policy and no authorization', async () => {
    for (const path of ['/console', '/console/app.js', '/console/app.css']) {
      const response = await fetch(`${stack.baseUrl}${path}`);
      expect(response.status, path).toBe(200);
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'none'");
      expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    }
    const html = await (await fetch(`${stack.baseUrl}/console`)).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect((await fetch(`${stack.baseUrl}/console/..%2Fpackage.json`)).status).toBe(404);
  });

  it('opens the console typed with a trailing slash, /console/, at its one address', async () => {
    await inPage(browser, 'console with a trailing slash', async (page) => {
      const response = await page.goto(`${stack.baseUrl}/console/`);

      expect(response?.status()).toBe(200);
      expect(new URL(page.url()).pathname).toBe('/console');
      await expect(page.getByTestId('storage-note').textContent()).resolves.toMatch(/session storage only/);
    });
  });

  it('serves its icon, linked from the page and at /favicon.ico, so that a browser meets no 404 loading it', async () => {
    const favicon = await fetch(`${stack.baseUrl}/favicon.ico`);
    const icon = Buffer.from(await favicon.arrayBuffer());

    expect(favicon.status).toBe(200);
    expect(favicon.headers.get('content-type')).toBe('image/x-icon');
    expect(favicon.headers.get('x-content-type-options')).toBe('nosniff');
    expect([...icon.subarray(0, 4)]).toEqual([0, 0, 1, 0]); // an ICO file

    await inPage(browser, 'console favicon', async (page) => {
      const failed: string[] = [];
      page.on('response', (response) => {
        if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
      });
      await page.goto(`${stack.baseUrl}/console`);
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      const iconHref = await page.evaluate(
        () => (globalThis as unknown as { document: { querySelector(s: string): { href: string } | null } }).document.querySelector('link[rel=icon]')?.href,
      );

      expect(iconHref).toBe(`${stack.baseUrl}/console/favicon.svg`);
      expect((await page.request.get(iconHref ?? '')).headers()['content-type']).toBe('image/svg+xml');
      expect(failed).toEqual([]);
    });
  });
});
