import { AcceptVpcEndpointConnectionsCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { LocalStack } from '../test/e2e/local-stack';
import { ALLOWED_ACCOUNT } from './local-runs';

// The reconciler's sweep of one large service: most connections long since
// available, some pending. Notifications are dropped while it is set up, so the
// reconciler is the only thing that sees the pending ones.

export interface SweepResult {
  connections: number;
  available: number;
  pending: number;
  /** The run that finds the pending ones, the available ones already on record. */
  runMs: number;
  ec2Calls: Record<string, number>;
  /** What the target allows: ceil(N/1000) describes, and one accept per batch. */
  expected: { describes: number; accepts: number };
  decided: number;
}

async function ec2CallsByAction(stack: LocalStack): Promise<Record<string, number>> {
  const calls = await stack.calls();
  return Object.fromEntries(Object.entries(calls.byAction).map(([action, count]) => [action, count.received]));
}

async function createMany(stack: LocalStack, serviceId: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let left = count; left > 0; left -= 10_000) {
    const response = await stack.request('POST', `/local/services/${serviceId}/endpoints`, {
      ownerAccountId: ALLOWED_ACCOUNT,
      count: Math.min(left, 10_000),
    });
    if (response.status !== 201) throw new Error(`creating endpoints answered ${response.status}: ${JSON.stringify(response.body)}`);
    ids.push(...(response.body as { vpcEndpointIds: string[] }).vpcEndpointIds);
  }
  return ids;
}

async function reconcileNow(stack: LocalStack): Promise<void> {
  const response = await stack.request('POST', '/local/reconcile');
  if (response.status !== 200) throw new Error(`POST /local/reconcile answered ${response.status}: ${JSON.stringify(response.body)}`);
}

export async function measureSweep(stack: LocalStack, available: number, pending: number, actionBatch: number): Promise<SweepResult> {
  await stack.reset();
  await stack.faults({ dropNotifications: 1 });
  const { serviceId } = await stack.createService();
  const health = await stack.health();
  const ec2 = new EC2Client({ endpoint: health.ec2Endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    // The available ones: accepted long ago, and already on record.
    const old = await createMany(stack, serviceId, available);
    for (let i = 0; i < old.length; i += 1000) {
      await ec2.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: old.slice(i, i + 1000) }));
    }
    await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).every((e) => e.state === 'available'), {
      timeoutMs: 120_000,
      intervalMs: 250,
      description: 'the accepted endpoints to become available',
    });
    await reconcileNow(stack);

    await createMany(stack, serviceId, pending);
    const before = await ec2CallsByAction(stack);
    const started = performance.now();
    await reconcileNow(stack);
    const runMs = performance.now() - started;
    const after = await ec2CallsByAction(stack);
    const endpoints = await stack.listEndpoints(serviceId);
    const connections = available + pending;
    return {
      connections,
      available,
      pending,
      runMs,
      ec2Calls: Object.fromEntries(Object.keys(after).map((action) => [action, (after[action] ?? 0) - (before[action] ?? 0)]).filter(([, n]) => n !== 0)),
      expected: { describes: Math.ceil(connections / 1000), accepts: Math.ceil(pending / actionBatch) },
      decided: endpoints.filter((e) => e.state !== 'pendingAcceptance').length - available,
    };
  } finally {
    ec2.destroy();
    await stack.faults({});
  }
}
