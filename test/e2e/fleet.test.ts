// A fleet: the local stack as a hub deciding its own account and Region and two spokes, each
// reached through the spoke role the local STS hands out, each with its own topic.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { LOCAL_APPROVER, signedClient } from './approvals-client';
import { eventTypesFor, type LocalStack, type ReconcileSummary, startLocalStack } from './local-stack';

const HUB = { accountId: '000000000000', region: 'us-east-1' };
const SPOKE_A = { accountId: '222233334444', region: 'eu-west-1' };
const SPOKE_B = { accountId: '555566667777', region: 'ap-southeast-2' };
const OUTSIDE = { accountId: '999988887777', region: 'eu-west-1' };
const ALLOWED = '111122223333';
const DENIED = '444455556666';
const STRANGER = '777766665555';
const MANAGED = { 'vpce-gatekeeper:managed': 'true' };
const spokeName = ({ accountId, region }: { accountId: string; region: string }) => `${accountId}:${region}`;

let stack: LocalStack;
let approver: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: ALLOWED, label: 'acme' }], deny: [{ account: DENIED, label: 'gone' }], onUnmatched: 'hold' } },
    spokes: [spokeName(SPOKE_A), spokeName(SPOKE_B)],
  });
  approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
  await stack.waitFor(async () => (await stack.health()).spokes.every((spoke) => spoke.status === 'confirmed'), { description: 'the spokes confirmed' });
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function ec2State(serviceId: string, endpointId: string): Promise<string | undefined> {
  return (await stack.listEndpoints(serviceId)).find((endpoint) => endpoint.vpcEndpointId === endpointId)?.state;
}

async function decided(serviceId: string, endpointId: string): Promise<boolean> {
  const record = await stack.record(serviceId, endpointId);
  return Boolean(record?.decision && !record.claim);
}

describe('decisions in three spokes', () => {
  it("decides each spoke's requests through that spoke, and names where the service lives on the record and the event", async () => {
    const services = await Promise.all([HUB, SPOKE_A, SPOKE_B].map((where) => stack.createService({ ...where, tags: MANAGED })));
    const endpoints: { serviceId: string; allowed: string; denied: string }[] = [];
    for (const { serviceId } of services) {
      endpoints.push({ serviceId, allowed: (await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId, denied: (await stack.createEndpoint(serviceId, { ownerAccountId: DENIED })).vpcEndpointId });
    }
    await stack.waitFor(async () => (await Promise.all(endpoints.flatMap(({ serviceId, allowed, denied }) => [decided(serviceId, allowed), decided(serviceId, denied)]))).every(Boolean), {
      timeoutMs: 30_000,
      description: 'every request decided',
    });

    const outbox = await stack.outbox();
    for (const [i, where] of [HUB, SPOKE_A, SPOKE_B].entries()) {
      const { serviceId, allowed, denied } = endpoints[i] as { serviceId: string; allowed: string; denied: string };
      expect(await ec2State(serviceId, allowed)).toMatch(/^(pending|available)$/);
      expect(await ec2State(serviceId, denied)).toBe('rejected');
      expect(await stack.record(serviceId, allowed)).toMatchObject({ providerAccountId: where.accountId, serviceRegion: where.region, ownerAccountId: ALLOWED });
      const accepted = outbox.map((m) => m.message as Record<string, unknown>).find((event) => event.endpointId === allowed && event.eventType === 'accepted');
      expect(accepted).toMatchObject({ providerAccountId: where.accountId, serviceRegion: where.region });
    }
    const { byAccountRegion } = await stack.calls();
    for (const where of [SPOKE_A, SPOKE_B]) {
      expect(byAccountRegion[`${where.accountId}/${where.region}`]?.byAction.AcceptVpcEndpointConnections?.received).toBeGreaterThan(0);
    }
  });

  it('lists every spoke\'s managed services with where they live, and filters the queue by account and Region', async () => {
    const inA = await stack.createService({ ...SPOKE_A, tags: MANAGED });
    const inB = await stack.createService({ ...SPOKE_B, tags: MANAGED });
    const heldInA = (await stack.createEndpoint(inA.serviceId, { ownerAccountId: STRANGER })).vpcEndpointId;
    const heldInB = (await stack.createEndpoint(inB.serviceId, { ownerAccountId: STRANGER })).vpcEndpointId;
    await stack.waitFor(async () => (await decided(inA.serviceId, heldInA)) && decided(inB.serviceId, heldInB), { description: 'both held' });

    const services = await approver.request('GET', '/services');
    const queueOfA = await approver.request('GET', '/connections', { query: { providerAccountId: SPOKE_A.accountId, serviceRegion: SPOKE_A.region } });
    const queueInB = await approver.request('GET', '/connections', { query: { serviceRegion: SPOKE_B.region } });
    const badFilter = await approver.request('GET', '/connections', { query: { providerAccountId: '2222' } });

    expect((services.body as { services: unknown[] }).services).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ serviceId: inA.serviceId, providerAccountId: SPOKE_A.accountId, serviceRegion: SPOKE_A.region }),
        expect.objectContaining({ serviceId: inB.serviceId, providerAccountId: SPOKE_B.accountId, serviceRegion: SPOKE_B.region }),
      ]),
    );
    expect((queueOfA.body as { connections: { endpointId: string }[] }).connections.map((c) => c.endpointId)).toEqual([heldInA]);
    expect((queueInB.body as { connections: { endpointId: string }[] }).connections.map((c) => c.endpointId)).toEqual([heldInB]);
    expect(badFilter.status).toBe(400);
  });
});

describe('services that are not managed', () => {
  it('leaves a service outside every spoke alone, and one in a spoke that is neither tagged nor named: the API answers 404', async () => {
    const outside = await stack.createService({ ...OUTSIDE, tags: MANAGED });
    const untagged = await stack.createService({ ...SPOKE_A });
    const outsideEndpoint = (await stack.createEndpoint(outside.serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId;
    const untaggedEndpoint = (await stack.createEndpoint(untagged.serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId;
    await stack.waitFor(() => stack.idle(), { description: 'the notifications handled' });
    await stack.reconcile();

    for (const [serviceId, endpointId] of [
      [outside.serviceId, outsideEndpoint],
      [untagged.serviceId, untaggedEndpoint],
    ] as const) {
      expect(await ec2State(serviceId, endpointId)).toBe('pendingAcceptance');
      expect(await stack.record(serviceId, endpointId)).toBeUndefined();
      expect((await approver.request('GET', `/services/${serviceId}/connections/${endpointId}`)).status).toBe(404);
      expect((await approver.request('POST', `/services/${serviceId}/connections/${endpointId}/accept`, { body: { reason: 'no' } })).status).toBe(404);
    }
  });
});

describe('an approver', () => {
  it("decides a request held in a spoke, through that spoke's role", async () => {
    const { serviceId } = await stack.createService({ ...SPOKE_B, tags: MANAGED });
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => (await stack.record(serviceId, vpcEndpointId))?.decision?.outcome === 'hold', { description: 'held' });

    const accepted = await approver.request('POST', `/services/${serviceId}/connections/${vpcEndpointId}/accept`, { body: { reason: 'ticket SEC-9' } });

    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ providerAccountId: SPOKE_B.accountId, serviceRegion: SPOKE_B.region, decision: { outcome: 'accept', rule: 'approver' } });
    expect(await ec2State(serviceId, vpcEndpointId)).toMatch(/^(pending|available)$/);
    expect(eventTypesFor(await stack.outbox(), vpcEndpointId)).toEqual(['approval-needed', 'accepted']);
    expect((await stack.calls()).byAccountRegion[`${SPOKE_B.accountId}/${SPOKE_B.region}`]?.byAction.AcceptVpcEndpointConnections).toEqual({ received: 1, failed: 0 });
  });
});

describe('a spoke that cannot be reached', () => {
  it('fails alone: its requests wait and nothing of it is revoked, the others are decided, the run reports it; after it recovers one run decides it', async () => {
    // An available connection whose account the policy then denies, with enforcement: a revocation in waiting.
    const inA = await stack.createService({ ...SPOKE_A, tags: MANAGED });
    const inB = await stack.createService({ ...SPOKE_B, tags: MANAGED });
    await approver.request('PUT', `/policies/${inA.serviceId}`, { body: { allow: [{ account: ALLOWED }, { account: STRANGER }], enforce: true, maxRevocationPercent: 100 } });
    const admitted = (await stack.createEndpoint(inA.serviceId, { ownerAccountId: STRANGER })).vpcEndpointId;
    await stack.waitFor(async () => (await ec2State(inA.serviceId, admitted)) === 'available', { description: 'admitted' });
    await approver.request('PUT', `/policies/${inA.serviceId}`, { body: { allow: [{ account: ALLOWED }], enforce: true, maxRevocationPercent: 100 }, headers: { 'if-match': '"1"' } });

    await stack.faults({ spokeUnavailable: [spokeName(SPOKE_A)] });
    const waitingInA = (await stack.createEndpoint(inA.serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId;
    const decidedInB = (await stack.createEndpoint(inB.serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId;
    await stack.waitFor(async () => decided(inB.serviceId, decidedInB), { description: 'the other spoke decided' });
    const during = await stack.reconcile();

    expect(await ec2State(inA.serviceId, waitingInA)).toBe('pendingAcceptance');
    expect(await ec2State(inA.serviceId, admitted)).toBe('available');
    expect(await ec2State(inB.serviceId, decidedInB)).toMatch(/^(pending|available)$/);
    expect(spokeOf(during, SPOKE_A)).toMatchObject({ services: 1, error: { code: expect.stringMatching(/AccessDenied|UnauthorizedOperation/) } });
    expect(spokeOf(during, SPOKE_B)).not.toHaveProperty('error');
    expect(during.totals).toMatchObject({ spokeErrors: 1, revoked: 0 });
    const announced = (await stack.outbox()).map((m) => m.message as Record<string, unknown>).filter((event) => event.eventType === 'spoke-unreachable');
    expect(announced).toEqual([expect.objectContaining({ providerAccountId: SPOKE_A.accountId, serviceRegion: SPOKE_A.region, serviceIds: [inA.serviceId] })]);

    await stack.faults({});
    const after = await stack.reconcile();

    expect(after.totals.spokeErrors).toBe(0);
    expect(await ec2State(inA.serviceId, waitingInA)).toMatch(/^(pending|available)$/);
    expect(await ec2State(inA.serviceId, admitted)).toBe('rejected'); // the revocation it held back, now that it can see
  });
});

function spokeOf(summary: ReconcileSummary, where: { accountId: string; region: string }) {
  return summary.spokes?.find((spoke) => spoke.providerAccountId === where.accountId && spoke.serviceRegion === where.region);
}
