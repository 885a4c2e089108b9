// The local stack with spokes (npm start -- --spokes …): EC2 keyed by account and Region, told
// apart by the credentials the local STS hands out for each spoke's role and by the SigV4 scope,
// each with its own rate limits; each spoke's notifications through its own topic, whose
// subscription the hub confirms; the spokeUnavailable fault. Nothing here depends on what the
// functions decide.
import {
  AcceptVpcEndpointConnectionsCommand,
  CreateVpcEndpointConnectionNotificationCommand,
  DescribeVpcEndpointConnectionNotificationsCommand,
  DescribeVpcEndpointServiceConfigurationsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from './local-stack';

const SPOKE = { accountId: '222233334444', region: 'eu-west-1' };
const OTHER_SPOKE = { accountId: '555566667777', region: 'ap-southeast-2' };
/** The local account in another Region: a spoke of its own, reached through the role too. */
const HOME_ELSEWHERE = { accountId: '000000000000', region: 'eu-west-1' };
const OUTSIDE = { accountId: '999988887777', region: 'eu-west-1' };
const CONSUMER = '111122223333';
const MANAGED = { 'vpce-gatekeeper:managed': 'true' };
const HUB_KEYS = { accessKeyId: 'local', secretAccessKey: 'local' };
const spokeTopic = ({ accountId, region }: { accountId: string; region: string }) =>
  `arn:aws:sns:${region}:${accountId}:vpce-gatekeeper-local-spoke-notifications`;

let stack: LocalStack;
const clients: { destroy(): void }[] = [];

beforeAll(async () => {
  stack = await startLocalStack({ spokes: [`${SPOKE.accountId}:${SPOKE.region}`, `${OTHER_SPOKE.accountId}:${OTHER_SPOKE.region}`, `${HOME_ELSEWHERE.accountId}:${HOME_ELSEWHERE.region}`] });
  // The hub's notification function confirms the spokes' subscriptions from the messages SNS sends into its queue.
  await stack.waitFor(async () => (await stack.health()).spokes.every((spoke) => spoke.status === 'confirmed'), { description: 'the spokes confirmed' });
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

function ec2(region: string, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = HUB_KEYS): EC2Client {
  const client = new EC2Client({ endpoint: stack.ec2Endpoint, region, credentials, maxAttempts: 1 });
  clients.push(client);
  return client;
}

/** The spoke role's credentials from the local STS, asked in `region` as the hub asks in the spoke's. */
async function assumeSpokeRole(accountId: string, region: string) {
  const sts = new STSClient({ endpoint: `${stack.baseUrl}/aws/sts`, region, credentials: HUB_KEYS, maxAttempts: 1 });
  clients.push(sts);
  const { Credentials } = await sts.send(
    new AssumeRoleCommand({
      RoleArn: `arn:aws:iam::${accountId}:role/vpce-gatekeeper-local-spoke`,
      RoleSessionName: 'hub',
      ExternalId: 'vpce-gatekeeper-local-spoke',
    }),
  );
  return { accessKeyId: Credentials?.AccessKeyId ?? '', secretAccessKey: Credentials?.SecretAccessKey ?? '', sessionToken: Credentials?.SessionToken ?? '' };
}

async function serviceIdsSeenBy(client: EC2Client): Promise<string[]> {
  const { ServiceConfigurations = [] } = await client.send(new DescribeVpcEndpointServiceConfigurationsCommand({}));
  return ServiceConfigurations.map((service) => service.ServiceId ?? '').sort();
}

/** The error the SDK throws, as name and status. */
async function failure(promise: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await promise;
  } catch (error) {
    return { name: (error as Error).name, status: (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

describe('spokes', () => {
  it("have a topic each whose subscription of the hub's queue the hub confirmed; the stack's own needed none", async () => {
    const { spokes } = await stack.health();

    expect(spokes.map(({ accountId, region, topicArn, status }) => ({ accountId, region, topicArn, status }))).toEqual([
      { accountId: '000000000000', region: 'us-east-1', topicArn: 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-local-notifications', status: 'confirmed' },
      { ...SPOKE, topicArn: spokeTopic(SPOKE), status: 'confirmed' },
      { ...OTHER_SPOKE, topicArn: spokeTopic(OTHER_SPOKE), status: 'confirmed' },
      { ...HOME_ELSEWHERE, topicArn: spokeTopic(HOME_ELSEWHERE), status: 'confirmed' },
    ]);
    expect(stack.output()).toContain(`spoke subscription confirmed topicArn=${spokeTopic(SPOKE)}`);
  });

  it('are refused at start when not account:region, naming the entry', async () => {
    await expect(startLocalStack({ spokes: ['222233334444:eu-west-1', 'eu-west-1'] })).rejects.toThrow(
      /failed to start: spokes: 'eu-west-1' must be account:region, such as 222233334444:eu-west-1/,
    );
  });
});

describe('POST /local/services in an account and Region', () => {
  it('creates the service where it is told, with its tags, and answers where it lives', async () => {
    const created = await stack.createService({ ...SPOKE, tags: MANAGED });
    const home = await stack.createService();

    const { body } = await stack.request('GET', '/local/services');

    expect(created).toEqual({ serviceId: expect.stringMatching(/^vpce-svc-[0-9a-f]{17}$/), ...SPOKE });
    expect(home).toEqual({ serviceId: expect.any(String), accountId: '000000000000', region: 'us-east-1' });
    expect(body).toEqual({
      services: expect.arrayContaining([
        { serviceId: created.serviceId, ...SPOKE, acceptanceRequired: true, tags: MANAGED },
        { serviceId: home.serviceId, accountId: '000000000000', region: 'us-east-1', acceptanceRequired: true, tags: {} },
      ]),
    });
  });

  it.each([
    [{ accountId: '2222' }, 'accountId'],
    [{ region: 'europe' }, 'region'],
    [{ tags: { 'vpce-gatekeeper:managed': 1 } }, 'tags'],
  ])('refuses %j with 400 naming the field', async (body, field) => {
    const response = await stack.request('POST', '/local/services', body);

    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toContain(field);
  });
});

describe('EC2 by account and Region', () => {
  it("shows each caller the services of its own account in the Region it signed for: the spoke role's credentials are the spoke's account", async () => {
    const inSpoke = await stack.createService({ ...SPOKE });
    const inOtherSpoke = await stack.createService({ ...OTHER_SPOKE });
    const home = await stack.createService();
    const homeElsewhere = await stack.createService({ ...HOME_ELSEWHERE });
    const outside = await stack.createService({ ...OUTSIDE });

    const spokeRole = await assumeSpokeRole(SPOKE.accountId, SPOKE.region);

    expect(await serviceIdsSeenBy(ec2(SPOKE.region, spokeRole))).toEqual([inSpoke.serviceId]);
    expect(await serviceIdsSeenBy(ec2('us-east-1', spokeRole))).toEqual([]);
    expect(await serviceIdsSeenBy(ec2(OTHER_SPOKE.region, await assumeSpokeRole(OTHER_SPOKE.accountId, OTHER_SPOKE.region)))).toEqual([inOtherSpoke.serviceId]);
    expect(await serviceIdsSeenBy(ec2('us-east-1'))).toEqual([home.serviceId]);
    expect(await serviceIdsSeenBy(ec2(HOME_ELSEWHERE.region))).toEqual([homeElsewhere.serviceId]);
    // A service outside every spoke exists in EC2, where no role of the hub's reaches.
    expect((await stack.request('GET', '/local/services')).body).toMatchObject({ services: expect.arrayContaining([expect.objectContaining({ serviceId: outside.serviceId })]) });
  });

  it('gives each account and Region rate-limit buckets of their own', async () => {
    await stack.faults({ ec2RateLimits: { nonMutating: { capacity: 2, refillPerSecond: 0.01 } } });
    const spokeRole = await assumeSpokeRole(SPOKE.accountId, SPOKE.region);
    const hub = ec2('us-east-1');

    await serviceIdsSeenBy(hub);
    await serviceIdsSeenBy(hub);
    const third = await failure(serviceIdsSeenBy(hub));
    const inSpoke = [await serviceIdsSeenBy(ec2(SPOKE.region, spokeRole)), await serviceIdsSeenBy(ec2(SPOKE.region, spokeRole))];
    const hubElsewhere = await serviceIdsSeenBy(ec2(HOME_ELSEWHERE.region));

    expect(third).toEqual({ name: 'RequestLimitExceeded', status: 503 });
    expect(inSpoke).toEqual([[], []]);
    expect(hubElsewhere).toEqual([]);
  });

  it('counts the calls of each account and Region', async () => {
    const spokeRole = await assumeSpokeRole(SPOKE.accountId, SPOKE.region);

    await serviceIdsSeenBy(ec2('us-east-1'));
    await serviceIdsSeenBy(ec2(SPOKE.region, spokeRole));
    await serviceIdsSeenBy(ec2(SPOKE.region, spokeRole));

    const { byAccountRegion } = await stack.calls();
    const described = (key: string) => byAccountRegion[key]?.byAction.DescribeVpcEndpointServiceConfigurations;
    expect(described('000000000000/us-east-1')).toEqual({ received: 1, failed: 0 });
    expect(described('222233334444/eu-west-1')).toEqual({ received: 2, failed: 0 });
  });

  it("lets a spoke's role act only on services tagged managed, and the hub's own keys only in the hub's Region", async () => {
    const tagged = await stack.createService({ ...SPOKE, tags: MANAGED });
    const untagged = await stack.createService({ ...SPOKE });
    const homeElsewhere = await stack.createService({ ...HOME_ELSEWHERE, tags: MANAGED });
    const endpoints = {
      tagged: (await stack.createEndpoint(tagged.serviceId, { ownerAccountId: CONSUMER })).vpcEndpointId,
      untagged: (await stack.createEndpoint(untagged.serviceId, { ownerAccountId: CONSUMER })).vpcEndpointId,
      homeElsewhere: (await stack.createEndpoint(homeElsewhere.serviceId, { ownerAccountId: CONSUMER })).vpcEndpointId,
    };
    const spoke = ec2(SPOKE.region, await assumeSpokeRole(SPOKE.accountId, SPOKE.region));
    const accept = (client: EC2Client, serviceId: string, endpointId: string) =>
      client.send(new AcceptVpcEndpointConnectionsCommand({ ServiceId: serviceId, VpcEndpointIds: [endpointId] }));

    const acceptedTagged = await accept(spoke, tagged.serviceId, endpoints.tagged);
    const refusedUntagged = await failure(accept(spoke, untagged.serviceId, endpoints.untagged));
    const refusedHubElsewhere = await failure(accept(ec2(HOME_ELSEWHERE.region), homeElsewhere.serviceId, endpoints.homeElsewhere));

    expect(acceptedTagged.Unsuccessful).toEqual([]);
    expect(refusedUntagged).toEqual({ name: 'UnauthorizedOperation', status: 403 });
    expect(refusedHubElsewhere).toEqual({ name: 'UnauthorizedOperation', status: 403 });
    expect((await stack.listEndpoints(untagged.serviceId))[0]?.state).toBe('pendingAcceptance');
  });
});

describe("a spoke's notifications", () => {
  it("arrive through that spoke's topic, and GET /local/notifications says which", async () => {
    const inSpoke = await stack.createService({ ...SPOKE, tags: MANAGED });
    const home = await stack.createService();

    const spokeEndpoint = await stack.createEndpoint(inSpoke.serviceId, { ownerAccountId: CONSUMER });
    const homeEndpoint = await stack.createEndpoint(home.serviceId, { ownerAccountId: CONSUMER });

    const published = (await stack.notifications()).map(({ topicArn, message, pendingConfirmation }) => ({
      topicArn,
      endpoint: (JSON.parse(message) as { vpcEndpointId: string }).vpcEndpointId,
      pendingConfirmation,
    }));
    expect(published).toEqual([
      { topicArn: spokeTopic(SPOKE), endpoint: spokeEndpoint.vpcEndpointId, pendingConfirmation: undefined },
      { topicArn: 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-local-notifications', endpoint: homeEndpoint.vpcEndpointId, pendingConfirmation: undefined },
    ]);
    await stack.waitFor(() => stack.idle(), { description: 'the notifications delivered and handled' });
    expect(await stack.dlq()).toEqual([]);
  });

  it('are not published for a service outside every spoke, nor for one without a connection notification until one is created', async () => {
    const outside = await stack.createService({ ...OUTSIDE });
    const unwired = await stack.createService({ ...SPOKE, tags: MANAGED, connectionNotification: false });
    const spoke = ec2(SPOKE.region, await assumeSpokeRole(SPOKE.accountId, SPOKE.region));
    await stack.createEndpoint(outside.serviceId, { ownerAccountId: CONSUMER });
    await stack.createEndpoint(unwired.serviceId, { ownerAccountId: CONSUMER });
    const before = await stack.notifications();
    const none = await spoke.send(new DescribeVpcEndpointConnectionNotificationsCommand({ Filters: [{ Name: 'service-id', Values: [unwired.serviceId] }] }));

    const { ConnectionNotification } = await spoke.send(
      new CreateVpcEndpointConnectionNotificationCommand({ ServiceId: unwired.serviceId, ConnectionNotificationArn: spokeTopic(SPOKE), ConnectionEvents: ['Connect', 'Accept', 'Reject', 'Delete'] }),
    );
    const wiredEndpoint = await stack.createEndpoint(unwired.serviceId, { ownerAccountId: CONSUMER });
    const after = await stack.notifications();
    const listed = await spoke.send(new DescribeVpcEndpointConnectionNotificationsCommand({}));

    expect(before).toEqual([]);
    expect(none.ConnectionNotificationSet).toEqual([]);
    expect(ConnectionNotification).toMatchObject({ ServiceId: unwired.serviceId, ConnectionNotificationArn: spokeTopic(SPOKE), ConnectionNotificationState: 'Enabled' });
    expect(after.map(({ topicArn, message }) => [topicArn, (JSON.parse(message) as { vpcEndpointId: string }).vpcEndpointId])).toEqual([
      [spokeTopic(SPOKE), wiredEndpoint.vpcEndpointId],
    ]);
    expect(listed.ConnectionNotificationSet?.map((notification) => [notification.ServiceId, [...(notification.ConnectionEvents ?? [])].sort()])).toEqual([
      [unwired.serviceId, ['Accept', 'Connect', 'Delete', 'Reject']],
    ]);
  });

  it('go to a topic in the service\'s Region only', async () => {
    const unwired = await stack.createService({ ...SPOKE, tags: MANAGED, connectionNotification: false });
    const spoke = ec2(SPOKE.region, await assumeSpokeRole(SPOKE.accountId, SPOKE.region));

    const elsewhere = await failure(
      spoke.send(new CreateVpcEndpointConnectionNotificationCommand({ ServiceId: unwired.serviceId, ConnectionNotificationArn: spokeTopic(OTHER_SPOKE), ConnectionEvents: ['Connect'] })),
    );

    expect(elsewhere).toEqual({ name: 'InvalidParameter', status: 400 });
  });

  it("of a topic that is no spoke's are never confirmed, and leave nothing in the dead-letter queue", async () => {
    const stranger = 'arn:aws:sns:eu-west-1:999988887777:vpce-gatekeeper-local-spoke-notifications';
    const confirmation = { Type: 'SubscriptionConfirmation', TopicArn: stranger, Token: 'f'.repeat(256), SubscribeURL: 'http://example.invalid/' };

    await stack.notify(JSON.stringify(confirmation));
    await stack.waitFor(async () => stack.output().includes(`subscription message ignored: not a confirmation of a spoke topic`), { description: 'the message ignored' });
    await stack.waitFor(() => stack.idle(), { description: 'the queue empty' });

    expect(await stack.dlq()).toEqual([]);
  });
});

describe('the spokeUnavailable fault', () => {
  it("refuses the spoke role in that account and Region, and whatever its sessions there do in EC2, until it is cleared", async () => {
    const session = await assumeSpokeRole(SPOKE.accountId, SPOKE.region);
    await stack.faults({ spokeUnavailable: [`${SPOKE.accountId}:${SPOKE.region}`] });

    const assume = await failure(assumeSpokeRole(SPOKE.accountId, SPOKE.region));
    const inAnotherRegion = await assumeSpokeRole(SPOKE.accountId, 'us-west-2');
    const describe = await failure(serviceIdsSeenBy(ec2(SPOKE.region, session)));
    const otherSpoke = await serviceIdsSeenBy(ec2(OTHER_SPOKE.region, await assumeSpokeRole(OTHER_SPOKE.accountId, OTHER_SPOKE.region)));
    await stack.faults({});
    const recovered = await serviceIdsSeenBy(ec2(SPOKE.region, await assumeSpokeRole(SPOKE.accountId, SPOKE.region)));

    expect(assume).toEqual({ name: 'AccessDenied', status: 403 });
    expect(inAnotherRegion.accessKeyId).toMatch(/^ASIA/);
    expect(describe).toEqual({ name: 'UnauthorizedOperation', status: 403 });
    expect(otherSpoke).toEqual([]);
    expect(recovered).toEqual([]);
    expect((await stack.calls()).byAccountRegion['222233334444/eu-west-1']?.byAction.DescribeVpcEndpointServiceConfigurations).toEqual({ received: 2, failed: 1 });
  });

  it("refuses the stack's own account and Region, which its functions reach without a role", async () => {
    const response = await stack.request('POST', '/local/faults', { spokeUnavailable: ['000000000000:us-east-1'] });

    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toContain('reach without a role');
  });
});
