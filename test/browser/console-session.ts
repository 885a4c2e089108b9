import type { Page } from 'playwright-core';
import type { LocalStack } from '../e2e/local-stack';

/** Signs the page in to the console with pasted access keys (SigV4 mode), and waits for the header. */
export async function signIn(page: Page, stack: LocalStack, credentials: { accessKeyId: string; secretAccessKey: string }): Promise<void> {
  await page.goto(`${stack.baseUrl}/console`);
  await page.getByLabel('Credentials').fill(JSON.stringify({ Version: 1, AccessKeyId: credentials.accessKeyId, SecretAccessKey: credentials.secretAccessKey }));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
}

/** A pending request of `accountId` that the policy holds for an approver, on a new service or the one given. */
export async function heldEndpoint(stack: LocalStack, accountId: string, serviceId?: string): Promise<{ serviceId: string; endpointId: string }> {
  const service = serviceId ?? (await stack.createService()).serviceId;
  const { vpcEndpointId: endpointId } = await stack.createEndpoint(service, { ownerAccountId: accountId });
  await stack.waitFor(async () => (await stack.record(service, endpointId))?.decision?.outcome === 'hold' && (await stack.idle()));
  return { serviceId: service, endpointId };
}

