import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ConnectionNotification, PrivateLinkSimulator } from '../../../local/aws/ec2-simulator';

const ACCEPT_DELAY_MS = 1000;

function simulator(): { sim: PrivateLinkSimulator; notifications: ConnectionNotification[] } {
  const notifications: ConnectionNotification[] = [];
  const sim = new PrivateLinkSimulator({ acceptDelayMs: ACCEPT_DELAY_MS, notify: (n) => notifications.push(n) });
  return { sim, notifications };
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

  it('publishes a notification for each state change it makes', () => {
    const { sim, notifications } = simulator();
    const { serviceId } = sim.createService({ acceptanceRequired: true });
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
  });
});
