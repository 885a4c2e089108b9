import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../e2e/local-stack';
import { inPage, launch } from './browser';

// The console against `npm start -- --auth jwt`: sign-in through the local OpenID
// Connect issuer (authorization code + PKCE), and the API's JWT path behind it.

const STRANGER = '999988887777';

let stack: LocalStack;
let browser: Browser;

beforeAll(async () => {
  [stack, browser] = await Promise.all([startLocalStack({ auth: 'jwt', policy: { default: { allow: [] } } }), launch()]);
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the approvals console with SSO', () => {
  it('signs in through the local OIDC issuer as the approver, keeping tokens in session storage, and accepts a request', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => (await stack.record(serviceId, endpointId))?.decision?.outcome === 'hold' && (await stack.idle()));

    await inPage(browser, 'sso sign in as approver', async (page) => {
      await page.goto(`${stack.baseUrl}/console`);
      await page.getByRole('button', { name: 'Sign in with SSO' }).click();
      await page.waitForURL(/\/local\/oidc\/authorize\?/);
      expect(new URL(page.url()).searchParams.get('code_challenge_method')).toBe('S256');
      await page.getByRole('button', { name: /local-approver/ }).click();

      await page.getByTestId('who').waitFor();
      await expect(page.getByTestId('who').textContent()).resolves.toBe('local-approver · approver · SSO');
      expect(new URL(page.url()).search).toBe(''); // the code is not left in the address bar
      const storage = await page.evaluate(() => {
        const { sessionStorage, localStorage } = globalThis as unknown as { sessionStorage: { length: number; key(i: number): string | null }; localStorage: { length: number } };
        return { session: Array.from({ length: sessionStorage.length }, (_, i) => sessionStorage.key(i)), local: localStorage.length };
      });
      expect(storage).toEqual({ session: ['vpce-gatekeeper.session'], local: 0 });

      await page.getByTestId('queue').getByRole('link', { name: endpointId }).click();
      await page.getByRole('button', { name: 'Accept…' }).click();
      await page.getByLabel(/Reason/).fill('approved in the SSO console');
      await page.getByRole('button', { name: 'Accept connection' }).click();
      await page.getByTestId('outcome').filter({ hasText: `Accepted ${endpointId}` }).waitFor();
      await page.getByTestId('decision').filter({ hasText: 'by local-approver' }).waitFor();
    });
    await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).find((e) => e.vpcEndpointId === endpointId)?.state === 'available');
  });

  it('signs in the local viewer, who sees no write actions', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => (await stack.record(serviceId, endpointId))?.decision?.outcome === 'hold' && (await stack.idle()));

    await inPage(browser, 'sso viewer', async (page) => {
      await page.goto(`${stack.baseUrl}/console`);
      await page.getByRole('button', { name: 'Sign in with SSO' }).click();
      await page.getByRole('button', { name: /local-viewer/ }).click();
      await page.getByTestId('who').filter({ hasText: 'local-viewer · viewer · SSO' }).waitFor();
      await page.goto(`${stack.baseUrl}/console#/connection/${serviceId}/${endpointId}`);
      await page.getByTestId('history').waitFor();
      expect(await page.getByRole('button', { name: /Accept|Reject|Revoke/ }).count()).toBe(0);
    });
  });
});
