import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalStackHttpError, startLocalStack, eventTypesFor, type LocalStack } from './local-stack';
import { storeOldPolicyVersion } from '../support/table-fixtures';

// Faults that kill or cut off the functions: a crash between EC2 acting and the
// table recording it, an unreachable table, an unreadable policy, and the
// dead-letter queue that notifications end in after maxReceiveCount receives.

const ALLOWED = '111122223333';
const BROKEN = 'vpce-svc-0000000000000000e';

const LEASE_SECONDS = 8;

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'hold' } },
    // A killed invocation is declared dead after 2 s, and its claim's lease (longer than
    // that, as deployed) runs out 8 s after it was taken; an unreachable table is given up on quickly.
    functionTimeoutMs: 2_000,
    // A failed message is back after 5 s (deployed: 180 s, six times the function timeout), and
    // in the dead-letter queue after 3 receives.
    visibilityTimeoutMs: 5_000,
    maxReceiveCount: 3,
    // LOG_FORMAT json: the metrics the functions embed in their logs are asserted below.
    env: { AWS_MAX_ATTEMPTS: '3', DECISION_LEASE_SECONDS: String(LEASE_SECONDS), LOG_FORMAT: 'json' },
  });
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function statesOf(serviceId: string): Promise<string[]> {
  return (await stack.listEndpoints(serviceId)).map((e) => e.state);
}

async function acceptCalls(endpointId: string): Promise<number> {
  const count = (await stack.calls()).byEndpoint[endpointId]?.AcceptVpcEndpointConnections;
  return (count?.received ?? 0) - (count?.failed ?? 0);
}

/** Expects a failed run: POST /local/reconcile answers 500 with the reason. */
async function failedReconcile(): Promise<string> {
  const error = await stack.reconcile().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LocalStackHttpError);
  expect((error as LocalStackHttpError).status).toBe(500);
  return (error as LocalStackHttpError).message;
}

describe('a crash after EC2 acted', () => {
  it('is found by the next reconcile and recorded from the claim, with no second Accept', async () => {
    await stack.faults({ dropNotifications: 1, crashAfterEc2Call: 1 });
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });

    expect(await failedReconcile()).toMatch(/TimeoutError|timed out/); // the run died waiting for EC2's answer

    expect(await statesOf(serviceId)).toEqual([expect.stringMatching(/^(pending|available)$/)]); // EC2 did accept
    const halfDone = await stack.record(serviceId, vpcEndpointId);
    expect(halfDone?.claim).toMatchObject({ outcome: 'accept', status: 'acting' });
    expect(halfDone?.decision).toBeUndefined();

    // While the claim's lease runs, its holder may still be recording: the next run leaves it alone.
    await stack.faults({ dropNotifications: 1 });
    expect((await stack.reconcile()).totals).toMatchObject({ recovered: 0, accepted: 0, failed: 0 });
    await new Promise((resolve) => setTimeout(resolve, LEASE_SECONDS * 1000));
    const summary = await stack.reconcile();

    expect(summary.totals).toMatchObject({ recovered: 1, accepted: 0, failed: 0 });
    expect(await acceptCalls(vpcEndpointId)).toBe(1);
    const recovered = await stack.record(serviceId, vpcEndpointId);
    expect(recovered?.claim).toBeUndefined();
    expect(recovered?.decision).toMatchObject({ outcome: 'accept', acted: true, rule: 'allow:acme-prod' });
    expect(recovered?.history.filter((e) => e.type === 'decision')).toHaveLength(1);
    expect(eventTypesFor(await stack.outbox(), vpcEndpointId)).toEqual(['accepted']);
  });
});

describe('an unreachable table', () => {
  it('stops every decision, fails and counts the run, and after recovery each connection is decided exactly once', async () => {
    const { serviceId } = await stack.createService();
    await stack.faults({ dynamoUnavailable: true });
    const endpoints = await Promise.all([1, 2, 3].map(() => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })));
    const ids = endpoints.map((e) => e.vpcEndpointId);
    await stack.waitFor(async () => (await stack.idle()) && (await stack.dlq()).length === 3, {
      timeoutMs: 30_000,
      description: 'every notification to fail maxReceiveCount times and reach the dead-letter queue',
    });

    await failedReconcile();

    expect(await statesOf(serviceId)).toEqual(['pendingAcceptance', 'pendingAcceptance', 'pendingAcceptance']);
    expect((await stack.calls()).byAction.AcceptVpcEndpointConnections).toBeUndefined();
    expect((await stack.health()).reconciles.failed).toBeGreaterThanOrEqual(1);
    expect(stack.output()).toContain('"ReconcileFailures"');

    await stack.faults({});
    const summary = await stack.reconcile();

    expect(summary.totals).toMatchObject({ accepted: 3, failed: 0 });
    for (const id of ids) {
      expect(await acceptCalls(id)).toBe(1);
      expect((await stack.record(serviceId, id))?.history.filter((e) => e.type === 'decision')).toHaveLength(1);
      expect(eventTypesFor(await stack.outbox(), id)).toEqual(['accepted']);
    }
  });
});

describe('an unreadable policy', () => {
  it('makes the whole run decide nothing and fail, on every service', async () => {
    const { serviceId } = await stack.createService();
    await stack.createService({ serviceId: BROKEN });
    await stack.faults({ dropNotifications: 1 });
    const fine = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    // A version edited by hand in the table that no longer validates.
    const { db, tableName } = await stack.table();
    await storeOldPolicyVersion(BROKEN, 99, '{"mode":"yolo"}', { db, tableName });

    expect(await failedReconcile()).toContain('invalid policy: mode');

    expect(await statesOf(serviceId)).toEqual(['pendingAcceptance']);
    expect(await stack.record(serviceId, fine.vpcEndpointId)).toBeUndefined();
  });
});

describe('the dead-letter queue', () => {
  it('holds a notification received maxReceiveCount times without going through; the message move brings it back once the cause is fixed', async () => {
    const { serviceId } = await stack.createService();
    await stack.faults({ dynamoUnavailable: true });
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    await stack.waitFor(async () => (await stack.idle()) && (await stack.dlq()).length === 1, { timeoutMs: 45_000, description: 'a dead letter' });
    const [deadLetter] = await stack.dlq();
    expect(deadLetter?.receiveCount).toBe(3);
    expect(JSON.parse(deadLetter?.body ?? '{}')).toMatchObject({ eventType: 'Connect', vpcEndpointId });
    expect((await stack.health()).deliveries.deadLetters).toBe(1);

    await stack.faults({});
    const summary = await stack.redriveDlq();

    expect(summary).toMatchObject({ status: 'COMPLETED', toMove: 1, moved: 1 });
    expect(await stack.dlq()).toEqual([]);
    await stack.waitFor(async () => (await stack.record(serviceId, vpcEndpointId))?.decision?.acted, { timeoutMs: 15_000, description: 'the redriven notification decided' });
    expect(await acceptCalls(vpcEndpointId)).toBe(1);
    expect((await stack.record(serviceId, vpcEndpointId))?.decision).toMatchObject({ outcome: 'accept', rule: 'allow:acme-prod' });
  });

  it('takes a redriven notification back when the cause is still there', async () => {
    const { serviceId } = await stack.createService();
    await stack.faults({ dynamoUnavailable: true });
    await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    await stack.waitFor(async () => (await stack.idle()) && (await stack.dlq()).length === 1, { timeoutMs: 45_000, description: 'a dead letter' });
    const [before] = await stack.dlq();

    await stack.redriveDlq();
    const justMoved = await stack.dlq();
    await stack.waitFor(async () => (await stack.idle()) && (await stack.dlq()).length === 1, { timeoutMs: 45_000, description: 'the dead letter back' });

    expect(justMoved).toEqual([]);
    expect((await stack.dlq())[0]).toMatchObject({ messageId: before?.messageId, receiveCount: 3 });
  });

  it('refuses a redrive request with a field it does not know', async () => {
    const response = await stack.request('POST', '/local/dlq/redrive', { maxMessages: 10 });

    expect(response.status).toBe(400);
  });
});
