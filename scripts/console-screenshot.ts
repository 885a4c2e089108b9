// Takes docs/console.png: the console on a held request, with the accept dialog
// asking for a reason. It starts its own local stack (PORT=0) and drives Debian's
// Chromium (or CHROMIUM_PATH) with playwright-core, as the browser tests do.
//
//   npx tsx scripts/console-screenshot.ts [--out docs/console.png]
import { parseArgs } from 'node:util';
import { LOCAL_APPROVER } from '../test/e2e/approvals-client';
import { startLocalStack } from '../test/e2e/local-stack';
import { launch } from '../test/browser/browser';
import { signIn } from '../test/browser/console-session';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs/console.png' } } });
const stack = await startLocalStack({
  policy: { default: { allow: [{ account: '111122223333', label: 'acme-prod' }], onUnmatched: 'hold' } },
  env: { LOCAL_SLACK: 'off' },
});
const browser = await launch();
try {
  const { serviceId } = await stack.createService();
  const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: '999988887777', region: 'eu-west-1' });
  await stack.waitFor(async () => (await stack.record(serviceId, endpointId))?.decision?.outcome === 'hold', { description: 'the request to be held' });

  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await signIn(page, stack, LOCAL_APPROVER);
  await page.getByTestId('queue').getByRole('link', { name: endpointId }).click();
  await page.getByRole('button', { name: 'Accept…' }).click();
  await page.getByLabel(/Reason/).fill('Ticket NET-1234: new customer, contract signed');
  // Filling the reason scrolled the dialog into view: the picture starts at the top of the page.
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: values.out });
  console.log(`wrote ${values.out}`);
} finally {
  await browser.close();
  await stack.stop();
}
