import { startLocalStack } from './test/e2e/local-stack';
const limits = process.argv[2] !== 'off';
const stack = await startLocalStack({ policy: { default: { allow: [{ account: '111122223333', label: 'x' }], onUnmatched: 'hold' } }, visibilityTimeoutMs: 3000, batchingWindowMs: 2000 });
try {
  await stack.faults({ duplicateDeliveries: 2, dynamoPartitionLimits: limits });
  const { serviceId } = await stack.createService();
  const t0 = Date.now();
  await stack.createEndpoints(serviceId, { ownerAccountId: '111122223333', count: 1000 });
  await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).every((e) => e.state !== 'pendingAcceptance') && (await stack.idle()), { timeoutMs: 120_000, intervalMs: 1000, description: 'done' }).catch((e) => console.log(e.message));
  console.log('limits', limits, 'elapsed', Date.now() - t0);
  console.log(JSON.stringify((await stack.invocations()).map(i => [i.batchSize, Math.round(i.durationMs), i.ok, i.failedItems])));
  const d = (await stack.request('GET', '/local/dynamodb-calls')).body as any;
  console.log(JSON.stringify({ ...d, hotPartitions: d.hotPartitions.slice(0, 5) }));
  console.log(stack.output().split('\n').filter(l => /WARN|ERROR/.test(l)).slice(0, 10).join('\n'));
} finally { await stack.stop(); }
