import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ConnectionNotification, PrivateLinkSimulator } from '../../../local/aws/ec2-simulator';

const ACCEPT_DELAY_MS = 1000;

const TOPIC = 'arn:aws:sns:us-east-1:000000000000:notifications';

function simulator(): { sim: PrivateLinkSimulator; notifications: ConnectionNotification[]; topics: string[] } {
  const notifications: ConnectionNotification[] = [];
  const topics: string[] = [];
  const sim = new PrivateLinkSimulator({
    acceptDelayMs: ACCEPT_DELAY_MS,
    notify: (topicArn, n) => {
      topics.push(topicArn);
      notifications.push(n);
    },
  });
  return { sim, notifications, topics };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('the PrivateLink state machine', () => {
  it('holds an accepted connection in pending for the accept delay, then makes it available', async () => {
    const { sim } = simulator();
    const { serviceId } = sim.createService({ acceptanceRequired: true });
    const { vpcEndpointId } = sim.createEndpoint(serviceId, { ownerAccountId: '111122223333', region: 'us-east-1' });

    sim.accept(serviceId, [vpcEndpointId]);
    const justAccepted = sim.endpointsOf(serviceId)[0]?.state;
    await vi.advanceTimersByTimeAsync(ACCEPT_DELAY_MS);

    expect(justAccepted).toBe('pending');
    expect(sim.endpointsOf(serviceId)[0]?.state).toBe('available');
  });

  it('rejects from pending acceptance, pending and available but accepts only from pending acceptance', () => {
    const { sim } = simulator();
    const { serviceId } = sim.createService({ acceptanceRequired: false });
    const { vpcEndpointId } = sim.createEndpoint(serviceId, { ownerAccountId: '111122223333', region: 'us-east-1' });

    const acceptFailures = sim.accept(serviceId, [vpcEndpointId]);
    const rejectFailures = sim.reject(serviceId, [vpcEndpointId]);

    expect(acceptFailures).toEqual([{ resourceId: vpcEndpointId, code: 'InvalidState', message: expect.stringContaining('state pending') }]);
    expect(rejectFailures).toEqual([]);
    expect(sim.endpointsOf(serviceId)[0]?.state).toBe('rejected');
  });

  it('cancels pending transitions on reset', async () => {
    const { sim } = simulator();
    const { serviceId } = sim.createService({ acceptanceRequired: false });
    sim.createEndpoint(serviceId, { ownerAccountId: '111122223333', region: 'us-east-1' });

    sim.reset();

    expect(sim.listConnections()).toEqual([]);
    expect(sim.listServices()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('publishes a notification for each state change it makes, to the topic of its connection notification', () => {
    const { sim, notifications, topics } = simulator();
    const { serviceId } = sim.createService({ acceptanceRequired: true, notificationTopicArn: TOPIC });
    const { vpcEndpointId } = sim.createEndpoint(serviceId, { ownerAccountId: '111122223333', region: 'us-east-1' });

    sim.accept(serviceId, [vpcEndpointId]);
    sim.reject(serviceId, [vpcEndpointId]);
    sim.deleteEndpoint(serviceId, vpcEndpointId);

    expect(notifications.map((n) => [n.eventType, n.vpcEndpointState])).toEqual([
      ['Connect', 'pendingAcceptance'],
      ['Accept', 'pending'],
      ['Reject', 'rejected'],
      ['Delete', 'deleted'],
    ]);
    expect(new Set(topics)).toEqual(new Set([TOPIC]));
  });

  it('publishes nothing for a service without a connection notification, and only the events a notification names', () => {
    const { sim, notifications, topics } = simulator();
    const silent = sim.createService({ acceptanceRequired: true }).serviceId;
    const { serviceId } = sim.createService({ acceptanceRequired: true });
    sim.createConnectionNotification(serviceId, TOPIC, ['Connect']);
    sim.createConnectionNotification(serviceId, 'arn:aws:sns:us-east-1:000000000000:other', ['Accept', 'Reject']);

    sim.createEndpoint(silent, { ownerAccountId: '111122223333' });
    const { vpcEndpointId } = sim.createEndpoint(serviceId, { ownerAccountId: '111122223333' });
    sim.accept(serviceId, [vpcEndpointId]);
    sim.deleteEndpoint(serviceId, vpcEndpointId);

    expect(notifications.map((n, i) => [n.eventType, topics[i]])).toEqual([
      ['Connect', TOPIC],
      ['Accept', 'arn:aws:sns:us-east-1:000000000000:other'],
    ]);
    expect(sim.listConnectionNotifications().map((config) => [config.serviceId, config.events])).toEqual([
      [serviceId, ['Connect']],
      [serviceId, ['Accept', 'Reject']],
    ]);
  });
});

describe('services in accounts and Regions', () => {
  it("lives in the local account and Region unless told, and shows its services and connections only to their account and Region", () => {
    const { sim } = simulator();
    const home = sim.createService({ acceptanceRequired: true });
    const away = sim.createService({ acceptanceRequired: true, location: { accountId: '222233334444', region: 'eu-west-1' } });
    const homeEndpoint = sim.createEndpoint(home.serviceId, { ownerAccountId: '111122223333' });
    const awayEndpoint = sim.createEndpoint(away.serviceId, { ownerAccountId: '111122223333' });

    expect([home.accountId, home.region]).toEqual(['000000000000', 'us-east-1']);
    expect(sim.listServices({ accountId: '222233334444', region: 'eu-west-1' }).map((service) => service.serviceId)).toEqual([away.serviceId]);
    expect(sim.findService(away.serviceId, { accountId: '222233334444', region: 'us-east-1' })).toBeUndefined();
    expect(sim.findService(away.serviceId, { accountId: '000000000000', region: 'eu-west-1' })).toBeUndefined();
    expect(sim.listConnections({ accountId: '000000000000', region: 'us-east-1' }).map((c) => c.vpcEndpointId)).toEqual([homeEndpoint.vpcEndpointId]);
    // A consumer's endpoint is in the service's Region unless it says otherwise (cross-Region PrivateLink).
    expect(awayEndpoint.region).toBe('eu-west-1');
    expect(sim.listServices()).toHaveLength(2);
  });
});
