import { beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionNotificationConfig, Ec2Connections, EnginePorts } from '../../lib/engine/ports';
import type { Spoke } from '../../lib/domain/spokes';

// The reconciler's wiring of notifications, against EC2 fakes per spoke: what it reads, what it
// creates, and what it reports. The configuration is read once per process, so it is set first.
const HUB: Spoke = { accountId: '123456789012', region: 'us-east-1' };
const SPOKE: Spoke = { accountId: '222233334444', region: 'eu-west-1' };
const INBOUND = 'arn:aws:sns:us-east-1:123456789012:vpce-gatekeeper-prod-notifications';
const SPOKE_TOPIC = 'arn:aws:sns:eu-west-1:222233334444:vpce-gatekeeper-prod-spoke-notifications';

let wireNotifications: typeof import('../../lib/notification-wiring').wireNotifications;

beforeAll(async () => {
  Object.assign(process.env, {
    AWS_REGION: HUB.region,
    HUB_ACCOUNT_ID: HUB.accountId,
    SPOKES: `${SPOKE.accountId}:${SPOKE.region}`,
    SPOKE_TOPIC_NAME: 'vpce-gatekeeper-prod-spoke-notifications',
    INBOUND_TOPIC_ARN: INBOUND,
    TABLE_NAME: 'table',
  });
  ({ wireNotifications } = await import('../../lib/notification-wiring'));
});

function fakeSpoke(existing: ConnectionNotificationConfig[], options: { unreadable?: boolean; refuses?: string } = {}) {
  const created: ConnectionNotificationConfig[] = [];
  let describes = 0;
  const ec2 = {
    connectionNotifications: async () => {
      describes++;
      if (options.unreadable) throw Object.assign(new Error('not authorized'), { name: 'UnauthorizedOperation' });
      return existing;
    },
    createConnectionNotification: async (serviceId: string, topicArn: string, events: readonly string[]) => {
      if (serviceId === options.refuses) throw Object.assign(new Error('You are not authorized to perform this operation.'), { name: 'UnauthorizedOperation' });
      created.push({ serviceId, topicArn, events: [...events] });
    },
  } as unknown as Ec2Connections;
  return { ec2, created, describes: () => describes };
}

function portsOf(where: Map<string, { spoke: Spoke; ec2: Ec2Connections }>): Pick<EnginePorts, 'ec2' | 'services'> {
  return {
    ec2: { forService: (serviceId) => where.get(serviceId)?.ec2 as Ec2Connections, all: () => [] },
    services: { ids: async () => [...where.keys()], isManaged: async () => true, locationOf: (serviceId) => where.get(serviceId)?.spoke },
  };
}

describe('wiring notifications', () => {
  it("creates what each service lacks, to its spoke's topic, reading each spoke once", async () => {
    const hub = fakeSpoke([
      { serviceId: 'vpce-svc-0000000000000000a', topicArn: INBOUND, events: ['Connect', 'Accept', 'Reject', 'Delete'] },
      { serviceId: 'vpce-svc-0000000000000000b', topicArn: INBOUND, events: ['Connect'] },
      { serviceId: 'vpce-svc-0000000000000000c', topicArn: 'arn:aws:sns:us-east-1:123456789012:someone-elses', events: ['Connect', 'Accept', 'Reject', 'Delete'] },
    ]);
    const spoke = fakeSpoke([]);
    const where = new Map([
      ['vpce-svc-0000000000000000a', { spoke: HUB, ec2: hub.ec2 }],
      ['vpce-svc-0000000000000000b', { spoke: HUB, ec2: hub.ec2 }],
      ['vpce-svc-0000000000000000c', { spoke: HUB, ec2: hub.ec2 }],
      ['vpce-svc-0000000000000000d', { spoke: SPOKE, ec2: spoke.ec2 }],
      ['vpce-svc-0000000000000000e', { spoke: SPOKE, ec2: spoke.ec2 }],
    ]);

    const outcomes = await wireNotifications([...where.keys()], portsOf(where));

    expect(hub.created).toEqual([
      { serviceId: 'vpce-svc-0000000000000000b', topicArn: INBOUND, events: ['Accept', 'Reject', 'Delete'] },
      { serviceId: 'vpce-svc-0000000000000000c', topicArn: INBOUND, events: ['Connect', 'Accept', 'Reject', 'Delete'] },
    ]);
    expect(spoke.created.map(({ serviceId, topicArn }) => [serviceId, topicArn])).toEqual([
      ['vpce-svc-0000000000000000d', SPOKE_TOPIC],
      ['vpce-svc-0000000000000000e', SPOKE_TOPIC],
    ]);
    expect([hub.describes(), spoke.describes()]).toEqual([1, 1]);
    expect(outcomes.map((outcome) => outcome.serviceId)).toEqual(['vpce-svc-0000000000000000b', 'vpce-svc-0000000000000000c', 'vpce-svc-0000000000000000d', 'vpce-svc-0000000000000000e']);
  });

  it('names a service whose notification EC2 refuses, and leaves a spoke it cannot read as it is', async () => {
    const hub = fakeSpoke([], { refuses: 'vpce-svc-0000000000000000a' });
    const down = fakeSpoke([], { unreadable: true });
    const where = new Map([
      ['vpce-svc-0000000000000000a', { spoke: HUB, ec2: hub.ec2 }],
      ['vpce-svc-0000000000000000d', { spoke: SPOKE, ec2: down.ec2 }],
    ]);

    const outcomes = await wireNotifications([...where.keys()], portsOf(where));

    expect(outcomes).toEqual([{ serviceId: 'vpce-svc-0000000000000000a', topicArn: INBOUND, error: { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.' } }]);
    expect(down.created).toEqual([]);
  });
});
