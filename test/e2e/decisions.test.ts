import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eventTypesFor, startLocalStack, type LocalStack } from './local-stack';

// End to end through `npm start`: the simulator publishes notifications, the
// real handler decides over the EC2 Query protocol and records in dynalite.

const ALLOWED = '111122223333';
const DENIED = '444455556666';
const STRANGER = '999988887777';
const STRICT_SERVICE = 'vpce-svc-0000000000000000a'; // its own policy rejects the unmatched

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: {
      default: {
        mode: 'auto',
        allow: [{ account: ALLOWED, label: 'acme-prod' }],
        deny: [{ account: DENIED, label: 'offboarded' }],
        onUnmatched: 'hold',
      },
      [STRICT_SERVICE]: { allow: [{ account: ALLOWED, label: 'acme-prod' }], onUnmatched: 'reject' },
    },
  });
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function settled(serviceId: string, expected: Record<string, string>) {
  return stack.waitFor(
    async () => {
      const endpoints = await stack.listEndpoints(serviceId);
      const done = endpoints.every((e) => expected[e.vpcEndpointId] === undefined || expected[e.vpcEndpointId] === e.state);
      // EC2 shows an accept before the function has recorded it: wait for the function too.
      return done && (await stack.idle()) && endpoints;
    },
    { timeoutMs: 30_000, description: `endpoints of ${serviceId} to reach ${JSON.stringify(expected)}` },
  );
}

/** Successful calls of an action per endpoint (received minus those failed by an injected fault). */
async function successfulCalls(action: string, endpointIds: string[]): Promise<number[]> {
  const calls = await stack.calls();
  return endpointIds.map((id) => {
    const count = calls.byEndpoint[id]?.[action];
    return (count?.received ?? 0) - (count?.failed ?? 0);
  });
}

describe('deciding connection requests', () => {
  it('accepts allowed, rejects denied and holds unmatched accounts, and says so on the outbound topic', async () => {
    const { serviceId } = await stack.createService();
    const allowed = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    const denied = await stack.createEndpoint(serviceId, { ownerAccountId: DENIED });
    const unmatched = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });

    await settled(serviceId, { [allowed.vpcEndpointId]: 'available', [denied.vpcEndpointId]: 'rejected' });
    await stack.waitFor(() => stack.idle());
    const outbox = await stack.outbox();

    expect(eventTypesFor(outbox, allowed.vpcEndpointId)).toEqual(['accepted']);
    expect(eventTypesFor(outbox, denied.vpcEndpointId)).toEqual(['rejected']);
    expect(eventTypesFor(outbox, unmatched.vpcEndpointId)).toEqual(['approval-needed']);
    const approval = outbox.find((m) => (m.message as { endpointId: string }).endpointId === unmatched.vpcEndpointId);
    expect(approval?.messageAttributes).toEqual({
      eventType: { DataType: 'String', StringValue: 'approval-needed' },
      serviceId: { DataType: 'String', StringValue: serviceId },
    });
    const endpoints = await stack.listEndpoints(serviceId);
    expect(endpoints.find((e) => e.vpcEndpointId === unmatched.vpcEndpointId)?.state).toBe('pendingAcceptance');

    const accepted = await stack.record(serviceId, allowed.vpcEndpointId);
    expect(accepted?.decision).toMatchObject({ outcome: 'accept', rule: 'allow:acme-prod', decidedBy: 'policy' });
    expect(accepted?.decision?.reason).toBe(`account ${ALLOWED} matched allow entry 'acme-prod'`);
    expect(accepted?.history.slice(0, 3)).toMatchObject([
      { type: 'first-seen', state: 'pendingAcceptance' },
      { type: 'decision', outcome: 'accept' },
      { type: 'state-changed', from: 'pendingAcceptance', to: 'pending' },
    ]);
    expect((await stack.record(serviceId, denied.vpcEndpointId))?.decision?.rule).toBe('deny:offboarded');
    expect((await stack.record(serviceId, unmatched.vpcEndpointId))?.decision).toMatchObject({ outcome: 'hold', acted: false });
  });

  it("uses a service's own policy over the default", async () => {
    const { serviceId } = await stack.createService({ serviceId: STRICT_SERVICE });
    const unmatched = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });

    await settled(serviceId, { [unmatched.vpcEndpointId]: 'rejected' });
    await stack.waitFor(() => stack.idle()); // EC2 acts before the decision is written

    expect((await stack.record(serviceId, unmatched.vpcEndpointId))?.decision?.rule).toBe('onUnmatched:reject');
  });

  it('decides each connection exactly once when every notification is delivered three times, shuffled', async () => {
    await stack.faults({ duplicateDeliveries: 3, shuffleDeliveries: true });
    const { serviceId } = await stack.createService();
    const allowed = await Promise.all(Array.from({ length: 12 }, () => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })));
    const denied = await Promise.all(Array.from({ length: 4 }, () => stack.createEndpoint(serviceId, { ownerAccountId: DENIED })));
    const allowedIds = allowed.map((e) => e.vpcEndpointId);
    const deniedIds = denied.map((e) => e.vpcEndpointId);

    await settled(serviceId, {
      ...Object.fromEntries(allowedIds.map((id) => [id, 'available'])),
      ...Object.fromEntries(deniedIds.map((id) => [id, 'rejected'])),
    });
    // let the Accept/Reject notifications (three of each) run their course too
    await stack.waitFor(async () => (await stack.notifications()).length === 16 * 2 && (await stack.idle()));

    expect(await successfulCalls('AcceptVpcEndpointConnections', allowedIds)).toEqual(allowedIds.map(() => 1));
    expect(await successfulCalls('RejectVpcEndpointConnections', deniedIds)).toEqual(deniedIds.map(() => 1));
    expect(await successfulCalls('AcceptVpcEndpointConnections', deniedIds)).toEqual(deniedIds.map(() => 0));
    const outbox = await stack.outbox();
    for (const id of allowedIds) expect(eventTypesFor(outbox, id)).toEqual(['accepted']);
    for (const id of deniedIds) expect(eventTypesFor(outbox, id)).toEqual(['rejected']);
    for (const id of [...allowedIds, ...deniedIds]) {
      const history = (await stack.record(serviceId, id))?.history ?? [];
      expect(history.filter((e) => e.type === 'decision')).toHaveLength(1);
    }
    expect(await stack.dlq()).toEqual([]);
  });

  it('still decides every connection exactly once when 30% of EC2 calls are throttled', async () => {
    await stack.faults({ ec2ThrottleRate: 0.3 });
    const { serviceId } = await stack.createService();
    // A batch of 20 makes only a few EC2 calls, which a 30% fault can miss: rounds of 20
    // until it has bitten (five rounds miss it with a chance of about 1 in 1,000).
    const ids: string[] = [];
    const throttled = async () =>
      Object.values((await stack.calls()).byAction).reduce((failed, count) => failed + (count?.failed ?? 0), 0);
    for (let round = 0; round < 5 && (round === 0 || (await throttled()) === 0); round++) {
      const endpoints = await Promise.all(Array.from({ length: 20 }, () => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })));
      ids.push(...endpoints.map((e) => e.vpcEndpointId));
      await settled(serviceId, Object.fromEntries(ids.map((id) => [id, 'available'])));
    }

    expect(await throttled()).toBeGreaterThan(0); // the fault did bite
    expect(await successfulCalls('AcceptVpcEndpointConnections', ids)).toEqual(ids.map(() => 1));
    for (const id of ids) {
      expect((await stack.record(serviceId, id))?.history.filter((e) => e.type === 'decision')).toHaveLength(1);
    }
  });

  it('survives a malformed notification: nothing is decided wrongly and the stack keeps working', async () => {
    const { serviceId } = await stack.createService();
    const held = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => (await stack.outbox()).length === 1);

    for (const message of ['this is not json {', '{"events": [{"what": 42}]}', '']) await stack.notify(message);
    const allowed = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });

    await settled(serviceId, { [allowed.vpcEndpointId]: 'available' });
    await stack.waitFor(() => stack.idle());
    const endpoints = await stack.listEndpoints(serviceId);
    expect(endpoints.find((e) => e.vpcEndpointId === held.vpcEndpointId)?.state).toBe('pendingAcceptance');
    expect(await successfulCalls('AcceptVpcEndpointConnections', [held.vpcEndpointId])).toEqual([0]);
    expect(eventTypesFor(await stack.outbox(), held.vpcEndpointId)).toHaveLength(1); // announced once, not again
    expect(stack.output()).toContain('sweeping every managed service');
    expect(await stack.dlq()).toEqual([]);
  });

  it('refuses a malformed control request with a JSON error and changes nothing', async () => {
    const { serviceId } = await stack.createService();
    const response = await stack.request('POST', `/local/services/${serviceId}/endpoints`, { ownerAccountId: 'acme' });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: { code: expect.any(String), message: expect.stringContaining('ownerAccountId') } });
    expect(await stack.listEndpoints(serviceId)).toEqual([]);
  });

  it('handles a Delete that arrives before its Connect without deciding twice', async () => {
    await stack.faults({ shuffleDeliveries: true, duplicateDeliveries: 2 });
    const { serviceId } = await stack.createService();
    const endpoints = await Promise.all(Array.from({ length: 6 }, () => stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })));
    await Promise.all(endpoints.map((e) => stack.deleteEndpoint(serviceId, e.vpcEndpointId)));
    // and once more, deliberately out of order, as SNS may
    for (const e of endpoints) {
      await stack.notify(JSON.stringify({ eventType: 'Delete', serviceId, vpcEndpointId: e.vpcEndpointId, vpcEndpointState: 'deleted' }));
      await stack.notify(JSON.stringify({ eventType: 'Connect', serviceId, vpcEndpointId: e.vpcEndpointId, vpcEndpointState: 'pendingAcceptance' }));
    }

    const ids = endpoints.map((e) => e.vpcEndpointId);
    await stack.waitFor(async () => {
      const records = await Promise.all(ids.map((id) => stack.record(serviceId, id)));
      return records.every((r) => r?.state === 'deleted') && (await stack.idle());
    }, { timeoutMs: 30_000, description: 'every record to say deleted' });

    for (const id of ids) {
      const r = await stack.record(serviceId, id);
      expect(r?.history.filter((e) => e.type === 'decision').length).toBeLessThanOrEqual(1);
    }
    for (const count of await successfulCalls('AcceptVpcEndpointConnections', ids)) expect(count).toBeLessThanOrEqual(1);
    expect(await stack.dlq()).toEqual([]);
  });
});
