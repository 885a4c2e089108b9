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

describe('named policies', () => {
  it("decides a service tagged vpce-gatekeeper:policy=<name> by that policy instead of the default, and holds one whose tag names no policy", async () => {
    // The default accepts ALLOWED and holds the rest; web-tier accepts only STRANGER and rejects the rest.
    const created = await approver.request('PUT', '/policies/web-tier', { body: { allow: [{ account: STRANGER, label: 'partner' }], onUnmatched: 'reject' } });
    expect(created.status).toBe(201);
    const webInA = await stack.createService({ ...SPOKE_A, tags: { ...MANAGED, 'vpce-gatekeeper:policy': 'web-tier' } });
    const webInB = await stack.createService({ ...SPOKE_B, tags: { ...MANAGED, 'vpce-gatekeeper:policy': 'web-tier' } });
    const typo = await stack.createService({ ...SPOKE_B, tags: { ...MANAGED, 'vpce-gatekeeper:policy': 'web-teir' } });
    const partner = (await stack.createEndpoint(webInA.serviceId, { ownerAccountId: STRANGER })).vpcEndpointId;
    const customer = (await stack.createEndpoint(webInB.serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId;
    const misTagged = (await stack.createEndpoint(typo.serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId;
    await stack.waitFor(async () => (await decided(webInA.serviceId, partner)) && (await decided(webInB.serviceId, customer)) && decided(typo.serviceId, misTagged), {
      description: 'all three decided',
    });

    expect(await ec2State(webInA.serviceId, partner)).toMatch(/^(pending|available)$/); // the default would have held it
    expect(await ec2State(webInB.serviceId, customer)).toBe('rejected'); // the default would have accepted it
    expect(await ec2State(typo.serviceId, misTagged)).toBe('pendingAcceptance'); // never the default in a typo's stead
    expect((await stack.record(typo.serviceId, misTagged))?.decision).toMatchObject({ outcome: 'hold', reason: expect.stringContaining('vpce-gatekeeper:policy=web-teir') });
    const services = (await approver.request('GET', '/services')).body as { services: { serviceId: string; policy: { policyId: string } | null }[] };
    expect(services.services.find((service) => service.serviceId === webInA.serviceId)?.policy).toMatchObject({ policyId: 'web-tier' });

    // A plan of web-tier covers the services tagged with its name (here: revoking the partner it admitted); the default's does not.
    const revokeAll = { allow: [{ account: ALLOWED }], onUnmatched: 'reject', enforce: true, maxRevocationPercent: 100 };
    await stack.waitFor(async () => (await ec2State(webInA.serviceId, partner)) === 'available', { description: 'the partner admitted' });
    const plan = await approver.request('POST', '/policies/web-tier/plan', { body: revokeAll });
    const defaultPlan = await approver.request('POST', '/policies/default/plan', { body: revokeAll });
    expect(plan.status).toBe(200);
    expect((plan.body as { changes: { serviceId: string; endpointId: string }[] }).changes).toEqual([expect.objectContaining({ serviceId: webInA.serviceId, endpointId: partner })]);
    expect((defaultPlan.body as { changes: { serviceId: string }[] }).changes.map((change) => change.serviceId)).not.toContain(webInA.serviceId);
  });

  it('lets a policy of the service\'s own id win over its tag', async () => {
    await approver.request('PUT', '/policies/web-tier', { body: { allow: [{ account: STRANGER }], onUnmatched: 'reject' } });
    const web = await stack.createService({ ...SPOKE_A, tags: { ...MANAGED, 'vpce-gatekeeper:policy': 'web-tier' } });
    await approver.request('PUT', `/policies/${web.serviceId}`, { body: { allow: [{ account: ALLOWED }], onUnmatched: 'hold' } });
    const customer = (await stack.createEndpoint(web.serviceId, { ownerAccountId: ALLOWED })).vpcEndpointId;
    await stack.waitFor(async () => decided(web.serviceId, customer), { description: 'decided' });

    expect(await ec2State(web.serviceId, customer)).toMatch(/^(pending|available)$/);
  });
});

describe('notifications', () => {
  it("wires a managed service that had none to its spoke's topic, and its requests then arrive without a reconcile run", async () => {
    const unwired = await stack.createService({ ...SPOKE_A, tags: MANAGED, connectionNotification: false });
    const wiredAlready = await stack.createService({ ...SPOKE_B, tags: MANAGED });

    const run = await stack.reconcile();
    const again = await stack.reconcile();

    const summaryOf = (serviceId: string) => run.services.find((service) => service.serviceId === serviceId);
    expect(summaryOf(unwired.serviceId)?.notificationsWired).toEqual({
      topicArn: `arn:aws:sns:${SPOKE_A.region}:${SPOKE_A.accountId}:vpce-gatekeeper-local-spoke-notifications`,
      events: ['Connect', 'Accept', 'Reject', 'Delete'],
    });
    expect(summaryOf(wiredAlready.serviceId)).not.toHaveProperty('notificationsWired');
    expect(run.totals.notificationsWired).toBe(1);
    expect(again.totals.notificationsWired).toBe(0);

    const { vpcEndpointId } = await stack.createEndpoint(unwired.serviceId, { ownerAccountId: ALLOWED });
    await stack.waitFor(async () => decided(unwired.serviceId, vpcEndpointId), { description: 'decided from its notification' });
    expect(await ec2State(unwired.serviceId, vpcEndpointId)).toMatch(/^(pending|available)$/);
    const delivered = (await stack.notifications()).filter((message) => message.message.includes(vpcEndpointId));
    expect(delivered.map((message) => message.topicArn)).toContain(summaryOf(unwired.serviceId)?.notificationsWired?.topicArn);
  });

  it("names a managed service that lacks the vpce-gatekeeper:managed tag: the stack's roles act only on tagged services", async () => {
    const hubUntagged = await stack.createService({ ...HUB });
    const run = await stack.reconcile();

    expect(run.services.find((service) => service.serviceId === hubUntagged.serviceId)?.untagged).toBe(
      "tag it vpce-gatekeeper:managed=true: the stack's roles act only on tagged services",
    );
  });
});

describe('a burst across the fleet, smaller', () => {
  it('decides 3 spokes × 40 connections created at once, each accepted exactly once', async () => {
    const services = await Promise.all([HUB, SPOKE_A, SPOKE_B].map((where) => stack.createService({ ...where, tags: MANAGED })));
    const created = await Promise.all(services.map(({ serviceId }) => stack.createEndpoints(serviceId, { ownerAccountId: ALLOWED, count: 40 })));
    const all = created.flatMap(({ vpcEndpointIds }, i) => vpcEndpointIds.map((endpointId) => ({ serviceId: services[i]?.serviceId as string, endpointId })));
    const started = Date.now();
    await stack.waitFor(async () => (await Promise.all(all.map(({ serviceId, endpointId }) => decided(serviceId, endpointId)))).every(Boolean), {
      timeoutMs: 30_000,
      description: 'all 120 decided',
    });

    expect(Date.now() - started).toBeLessThan(30_000);
    const { byEndpoint } = await stack.calls();
    expect(all.filter(({ endpointId }) => byEndpoint[endpointId]?.AcceptVpcEndpointConnections?.received !== 1)).toEqual([]);
    for (const { serviceId, endpointId } of all) expect(await ec2State(serviceId, endpointId)).toMatch(/^(pending|available)$/);
  });
});

function spokeOf(summary: ReconcileSummary, where: { accountId: string; region: string }) {
  return summary.spokes?.find((spoke) => spoke.providerAccountId === where.accountId && spoke.serviceRegion === where.region);
}
