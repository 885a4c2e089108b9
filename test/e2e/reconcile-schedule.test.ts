import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from './local-stack';

// RECONCILE_INTERVAL_SECONDS: the local stack runs the reconciler on a timer, as
// EventBridge runs the deployed one.

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: '111122223333', label: 'acme-prod' }] } },
    reconcileIntervalSeconds: 1,
  });
});

afterAll(async () => {
  await stack?.stop();
});

it('decides a connection whose notification was lost on its own schedule, with no one asking', async () => {
  await stack.faults({ dropNotifications: 1 });
  const { serviceId } = await stack.createService();
  const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: '111122223333' });

  await stack.waitFor(async () => (await stack.listEndpoints(serviceId))[0]?.state === 'available', {
    timeoutMs: 20_000,
    description: 'a scheduled run to accept the connection',
  });

  expect((await stack.health()).reconciles.completed).toBeGreaterThanOrEqual(1);
  expect((await stack.calls()).byEndpoint[vpcEndpointId]?.AcceptVpcEndpointConnections?.received).toBe(1);
});
