import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { authorizeOnService, ec2CallerOf } from '../../../local/aws/ec2-callers';
import { Ec2ApiError } from '../../../local/aws/ec2-errors';
import { PrivateLinkSimulator } from '../../../local/aws/ec2-simulator';
import { Faults } from '../../../local/aws/faults';
import { parseSpokeList, spokeRoleArn } from '../../../local/aws/locations';
import { InboundSns } from '../../../local/aws/sns-inbound';
import { LocalQueue } from '../../../local/aws/sqs';
import { LocalSts } from '../../../local/aws/sts-api';

// The local stack's spokes: their topics' subscriptions to the hub's queue, the roles the local
// STS lets the hub assume in them, and how EC2 tells their callers apart.

const HUB_TOPIC = { accountId: '000000000000', region: 'us-east-1', topicArn: 'arn:aws:sns:us-east-1:000000000000:hub' };
const SPOKE_TOPIC = { accountId: '222233334444', region: 'eu-west-1', topicArn: 'arn:aws:sns:eu-west-1:222233334444:spoke' };
const HUB_SIGNED_IN = (region: string, service: string) =>
  `AWS4-HMAC-SHA256 Credential=local/20260101/${region}/${service}/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}`;

beforeEach(() => {
  vi.spyOn(process.stderr, 'write').mockReturnValue(true);
});

afterEach(() => {
  vi.restoreAllMocks();
});

function topics() {
  const queue = new LocalQueue({ name: 'notifications', endpoint: 'http://127.0.0.1/aws/sqs', visibilityTimeoutMs: 1000 });
  const sns = new InboundSns({ topics: [HUB_TOPIC, SPOKE_TOPIC], queue, faults: new Faults(), endpoint: 'http://127.0.0.1/aws/sns' });
  return { queue, sns };
}

const bodies = (queue: LocalQueue) => queue.messages().map((message) => message.body);

describe("a spoke topic's subscription of the hub's queue", () => {
  it('is pending for a topic in another account, which SNS asks to confirm by a message into the queue', () => {
    const { queue, sns } = topics();

    const [confirmation, ...others] = bodies(queue).map((body) => JSON.parse(body) as Record<string, string>);

    expect(others).toEqual([]);
    expect(confirmation).toMatchObject({ Type: 'SubscriptionConfirmation', TopicArn: SPOKE_TOPIC.topicArn, Token: expect.stringMatching(/^[0-9a-f]{256}$/) });
    expect(confirmation?.SubscribeURL).toBe(
      `http://127.0.0.1/aws/sns?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(SPOKE_TOPIC.topicArn)}&Token=${confirmation?.Token}`,
    );
    expect(sns.subscriptionsOfQueue().map(({ topicArn, status }) => [topicArn, status])).toEqual([
      [HUB_TOPIC.topicArn, 'confirmed'],
      [SPOKE_TOPIC.topicArn, 'pendingConfirmation'],
    ]);
  });

  it('delivers nothing until confirmed, and raw messages after', () => {
    const { queue, sns } = topics();
    const token = (JSON.parse(bodies(queue)[0] ?? '{}') as { Token: string }).Token;
    queue.clear();

    sns.publish('before', SPOKE_TOPIC.topicArn);
    const confirmed = sns.answer(`Action=ConfirmSubscription&TopicArn=${encodeURIComponent(SPOKE_TOPIC.topicArn)}&Token=${token}`, HUB_SIGNED_IN('eu-west-1', 'sns'));
    sns.publish('after', SPOKE_TOPIC.topicArn);

    expect(confirmed.status).toBe(200);
    expect(confirmed.xml).toContain(`<SubscriptionArn>${SPOKE_TOPIC.topicArn}:`);
    expect(bodies(queue)).toEqual(['after']);
    expect(sns.messages().map(({ message, topicArn, pendingConfirmation }) => [message, topicArn, pendingConfirmation ?? false])).toEqual([
      ['before', SPOKE_TOPIC.topicArn, true],
      ['after', SPOKE_TOPIC.topicArn, false],
    ]);
  });

  it('is confirmed only with its token, by SNS in the topic\'s Region, or by a GET of the SubscribeURL', () => {
    const { queue, sns } = topics();
    const { Token: token, SubscribeURL: url } = JSON.parse(bodies(queue)[0] ?? '{}') as { Token: string; SubscribeURL: string };
    const body = (withToken: string) => `Action=ConfirmSubscription&TopicArn=${encodeURIComponent(SPOKE_TOPIC.topicArn)}&Token=${withToken}`;

    const wrongToken = sns.answer(body('f'.repeat(256)), HUB_SIGNED_IN('eu-west-1', 'sns'));
    const wrongRegion = sns.answer(body(token), HUB_SIGNED_IN('us-east-1', 'sns'));
    const stillPending = sns.isPending(SPOKE_TOPIC.topicArn);
    const byUrl = sns.answerSubscribeUrl(new URL(url).searchParams);

    expect([wrongToken.status, wrongToken.xml.match(/<Code>(\w+)<\/Code>/)?.[1]]).toEqual([400, 'InvalidParameter']);
    expect([wrongRegion.status, wrongRegion.xml.match(/<Code>(\w+)<\/Code>/)?.[1]]).toEqual([404, 'NotFound']);
    expect(stillPending).toBe(true);
    expect(byUrl.status).toBe(200);
    expect(sns.isPending(SPOKE_TOPIC.topicArn)).toBe(false);
  });

  it('asks again for what is still pending when asked to, as after the queue was emptied', () => {
    const { queue, sns } = topics();
    queue.clear();

    sns.reset();
    sns.requestConfirmations();

    expect(bodies(queue).map((body) => (JSON.parse(body) as { TopicArn: string }).TopicArn)).toEqual([SPOKE_TOPIC.topicArn]);
  });
});

describe("the spokes' roles in the local STS", () => {
  const role = { roleArn: spokeRoleArn('222233334444'), externalId: 'secret' };
  const assume = (sts: LocalSts, region: string, externalId = 'secret') =>
    sts.answer(`Action=AssumeRole&RoleArn=${encodeURIComponent(role.roleArn)}&RoleSessionName=hub&ExternalId=${externalId}`, HUB_SIGNED_IN(region, 'sts'));

  it("hands out credentials of the role's account, with its external id, and refuses where the role is unavailable", () => {
    const faults = new Faults();
    const sts = new LocalSts([role], { refuses: ({ accountId }, region) => faults.spokeUnavailable({ accountId, region }) });
    faults.set({ spokeUnavailable: ['222233334444:eu-west-1'] });

    const refused = assume(sts, 'eu-west-1');
    const elsewhere = assume(sts, 'ap-southeast-2');
    const wrongId = assume(sts, 'ap-southeast-2', 'guess');
    const accessKeyId = /<AccessKeyId>(\w+)<\/AccessKeyId>/.exec(elsewhere.xml)?.[1] ?? '';

    expect([refused.status, refused.xml.match(/<Code>(\w+)<\/Code>/)?.[1]]).toEqual([403, 'AccessDenied']);
    expect(elsewhere.status).toBe(200);
    expect(wrongId.status).toBe(403);
    expect(sts.session(accessKeyId)).toMatchObject({ accountId: '222233334444', roleArn: role.roleArn });
  });

  it('refuses an unsigned AssumeRole', () => {
    const sts = new LocalSts([role]);
    expect(sts.answer(`Action=AssumeRole&RoleArn=${role.roleArn}&RoleSessionName=hub`).status).toBe(403);
  });
});

describe('EC2 callers', () => {
  const sts = new LocalSts([{ roleArn: spokeRoleArn('222233334444') }, { roleArn: 'arn:aws:iam::000000000000:role/something-else' }]);
  const sessionOf = (roleArn: string) => {
    const answer = sts.answer(`Action=AssumeRole&RoleArn=${encodeURIComponent(roleArn)}&RoleSessionName=hub`, HUB_SIGNED_IN('us-east-1', 'sts'));
    return /<AccessKeyId>(\w+)<\/AccessKeyId>/.exec(answer.xml)?.[1] ?? '';
  };
  const signedBy = (accessKeyId: string, region: string) => `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20260101/${region}/ec2/aws4_request, SignedHeaders=host, Signature=x`;
  const simulator = new PrivateLinkSimulator({ acceptDelayMs: 0, notify: () => undefined });
  const untagged = simulator.createService({ acceptanceRequired: true, location: { accountId: '222233334444', region: 'eu-west-1' } });
  const tagged = simulator.createService({ acceptanceRequired: true, location: { accountId: '222233334444', region: 'eu-west-1' }, tags: { 'vpce-gatekeeper:managed': 'true' } });
  const hubElsewhere = simulator.createService({ acceptanceRequired: true, location: { accountId: '000000000000', region: 'eu-west-1' } });
  const refusal = (run: () => void) => {
    try {
      run();
      return 'allowed';
    } catch (error) {
      return error instanceof Ec2ApiError ? error.code : String(error);
    }
  };

  it("are the hub for the stack's own keys, and a spoke's role for its sessions, in the Region of the signature", () => {
    expect(ec2CallerOf(signedBy('local', 'us-east-1'), sts)).toMatchObject({ kind: 'hub', accountId: '000000000000', region: 'us-east-1' });
    expect(ec2CallerOf(signedBy(sessionOf(spokeRoleArn('222233334444')), 'eu-west-1'), sts)).toMatchObject({ kind: 'spoke', accountId: '222233334444', region: 'eu-west-1' });
    expect(ec2CallerOf(signedBy(sessionOf('arn:aws:iam::000000000000:role/something-else'), 'eu-west-1'), sts)).toMatchObject({ kind: 'other' });
    expect(refusal(() => ec2CallerOf(signedBy('ASIAUNKNOWNUNKNOWN', 'eu-west-1'), sts))).toBe('AuthFailure');
    expect(refusal(() => ec2CallerOf(undefined, sts))).toBe('AuthFailure');
  });

  it("let a spoke's role act only on services tagged managed, and the hub's functions only in their own Region", () => {
    const spoke = ec2CallerOf(signedBy(sessionOf(spokeRoleArn('222233334444')), 'eu-west-1'), sts);
    const hub = ec2CallerOf(signedBy('local', 'eu-west-1'), sts);

    expect(refusal(() => authorizeOnService(spoke, 'AcceptVpcEndpointConnections', tagged))).toBe('allowed');
    expect(refusal(() => authorizeOnService(spoke, 'AcceptVpcEndpointConnections', untagged))).toBe('UnauthorizedOperation');
    expect(refusal(() => authorizeOnService(hub, 'AcceptVpcEndpointConnections', hubElsewhere))).toBe('UnauthorizedOperation');
  });
});

describe('the --spokes list', () => {
  it("always starts with the stack's own account and Region, and drops repeats", () => {
    expect(parseSpokeList(' 222233334444:eu-west-1,000000000000:us-east-1,222233334444:eu-west-1')).toEqual([
      { accountId: '000000000000', region: 'us-east-1' },
      { accountId: '222233334444', region: 'eu-west-1' },
    ]);
    expect(parseSpokeList(undefined)).toEqual([{ accountId: '000000000000', region: 'us-east-1' }]);
  });

  it('refuses entries that are not account:region, naming them', () => {
    expect(() => parseSpokeList('222233334444:eu-west-1,eu-west-1,1234:us-east-1')).toThrow(
      "spokes: 'eu-west-1', '1234:us-east-1' must be account:region, such as 222233334444:eu-west-1",
    );
  });
});
