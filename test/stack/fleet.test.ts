import { execFile, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type Deployment, holds, policySize, resolve } from './intrinsics';
import { inlinePolicies, PACKAGE_TIMEOUT_MS, packageStack, type PolicyDocument, readTemplate, removePackages, repoRoot, type Statement, type Template } from './package-stack';

// A fleet's templates: stack/spoke.yml, which each spoke runs, and the hub's stack with spokes.
// IAM's limits, checked with the longest names a deployment can give (IAM counts a policy's
// characters without white space): a role's inline policies 10,240 characters together, a
// managed policy 6,144, a trust policy 2,048 (the default quota). SQS allows a queue policy of
// 8,192 bytes and Lambda 4 KB of environment variables in all. "Well under" is at most 70% here.

const IAM_INLINE_ROLE_POLICIES = 10_240;
const IAM_MANAGED_POLICY = 6_144;
const IAM_TRUST_POLICY = 2_048;
const SQS_QUEUE_POLICY = 8_192;
const LAMBDA_ENVIRONMENT = 4_096;
const WELL_UNDER = 0.7;
/** The most services stack/spoke.yml's ServiceIds names (its role policy lists each by ARN). */
const SPOKE_NAMED_SERVICES = 90;

const load = createRequire(import.meta.url);
const spokes = load(join(repoRoot, 'stack', 'spokes.cjs')) as {
  MAX_SPOKES: number;
  parseSpokes: (raw: string) => { accountId: string; region: string }[];
  spokeNames: (service: string, stage: string) => { topicName: string; roleName: string };
};
const endpointServices = load(join(repoRoot, 'stack', 'endpoint-services.cjs')) as { MAX_NAMED_SERVICES: number; parseServiceIds: (raw: string) => string[] };

const HUB_ACCOUNT = '123456789012';
const SPOKE_ACCOUNT = '222233334444';
/** The longest names a deployment gives: what the sizes below are measured with. */
const LONGEST: Deployment = { partition: 'aws-us-gov', region: 'ap-southeast-2', accountId: HUB_ACCOUNT };
/** Stages are at most 21 characters (a function name must stay within 64). */
const LONG_STAGE = 'fleet-size-stage-21ch';

const serviceIds = (count: number) => Array.from({ length: count }, (_, i) => `vpce-svc-${(0x100000000000000000n + BigInt(i)).toString(16).slice(1)}`);
const spokeList = (count: number) => Array.from({ length: count }, (_, i) => `${String(300000000000 + i)}:${i % 2 ? 'ap-southeast-2' : 'eu-central-1'}`);

const actionsOf = (statement: Statement) => [statement.Action].flat();

describe('stack/spoke.yml, the template each spoke runs', () => {
  let text: string;
  let template: Template;
  const deployed = (parameters: Record<string, string> = {}): Deployment => ({
    partition: 'aws',
    region: 'eu-west-1',
    accountId: SPOKE_ACCOUNT,
    parameters: {
      HubAccountId: HUB_ACCOUNT,
      HubQueueArn: `arn:aws:sqs:us-east-1:${HUB_ACCOUNT}:vpce-gatekeeper-prod-notifications`,
      GatekeeperStage: 'prod',
      ExternalId: 'pick-a-secret',
      ...parameters,
    },
  });
  const resolved = (parameters: Record<string, string> = {}) => resolve(template, template.Resources, deployed(parameters)) as Template['Resources'];

  beforeAll(async () => {
    text = await readFile(join(repoRoot, 'stack', 'spoke.yml'), 'utf8');
    template = parse(text) as Template;
  });

  const cfnLint = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  const lintable = cfnLint.status === 0;
  it.runIf(lintable)(`passes cfn-lint (${lintable ? cfnLint.stdout.trim() : ''})`, async () => {
    const run = await promisify(execFile)('cfn-lint', [join(repoRoot, 'stack', 'spoke.yml'), join(repoRoot, 'stack', 'organizations-read-role.yml')]).then(
      () => ({ code: 0, output: '' }),
      (error: { code?: number; stdout?: string }) => ({ code: error.code ?? 1, output: error.stdout ?? '' }),
    );
    expect(run).toEqual({ code: 0, output: '' });
  });
  it.skipIf(lintable)('passes cfn-lint: skipped, cfn-lint is not installed (pip install cfn-lint)', () => {});

  it('holds the topic, its policy, the subscription into the hub queue and the role, and nothing else', () => {
    expect(Object.fromEntries(Object.entries(template.Resources).map(([id, resource]) => [id, resource.Type]))).toEqual({
      NotificationsTopic: 'AWS::SNS::Topic',
      NotificationsTopicPolicy: 'AWS::SNS::TopicPolicy',
      HubSubscription: 'AWS::SNS::Subscription',
      SpokeRole: 'AWS::IAM::Role',
    });
  });

  it('names its topic and its role as the hub expects them, from the stage', () => {
    const resources = resolved();
    const names = spokes.spokeNames('vpce-gatekeeper', 'prod');

    expect(resources.NotificationsTopic?.Properties.TopicName).toBe(names.topicName);
    expect(resources.SpokeRole?.Properties.RoleName).toBe(names.roleName);
  });

  it("lets vpce.amazonaws.com publish only about this account's services in this Region, and the hub's functions confirm", () => {
    const policy = resolved().NotificationsTopicPolicy?.Properties as { Topics: unknown[]; PolicyDocument: PolicyDocument };
    const topicArn = `arn:aws:sns:eu-west-1:${SPOKE_ACCOUNT}:vpce-gatekeeper-prod-spoke-notifications`;

    expect(policy.Topics).toEqual([topicArn]);
    expect(policy.PolicyDocument.Statement).toEqual([
      {
        Sid: 'AllowEndpointServiceNotifications',
        Effect: 'Allow',
        Principal: { Service: 'vpce.amazonaws.com' },
        Action: 'SNS:Publish',
        Resource: topicArn,
        Condition: {
          StringEquals: { 'aws:SourceAccount': SPOKE_ACCOUNT },
          ArnLike: { 'aws:SourceArn': `arn:aws:ec2:eu-west-1:${SPOKE_ACCOUNT}:vpc-endpoint-service/*` },
        },
      },
      {
        Sid: 'HubConfirmsItsSubscription',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${HUB_ACCOUNT}:root` },
        Action: 'SNS:ConfirmSubscription',
        Resource: topicArn,
        Condition: { ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${HUB_ACCOUNT}:role/vpce-gatekeeper/prod/*` } },
      },
    ]);
  });

  it("delivers every notification raw into the hub's queue", () => {
    expect(resolved().HubSubscription?.Properties).toEqual({
      TopicArn: `arn:aws:sns:eu-west-1:${SPOKE_ACCOUNT}:vpce-gatekeeper-prod-spoke-notifications`,
      Protocol: 'sqs',
      Endpoint: `arn:aws:sqs:us-east-1:${HUB_ACCOUNT}:vpce-gatekeeper-prod-notifications`,
      RawMessageDelivery: true,
    });
  });

  it("is assumed only by the hub stage's function roles, by their IAM path, with the external id", () => {
    const role = resolved().SpokeRole?.Properties as { AssumeRolePolicyDocument: PolicyDocument; MaxSessionDuration: number };

    expect(role.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Sid: 'TrustHubFunctions',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${HUB_ACCOUNT}:root` },
        Action: 'sts:AssumeRole',
        Condition: {
          ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${HUB_ACCOUNT}:role/vpce-gatekeeper/prod/*` },
          StringEquals: { 'sts:ExternalId': 'pick-a-secret' },
        },
      },
    ]);
    expect(template.Parameters?.ExternalId).not.toHaveProperty('Default');
  });

  it('reads everywhere it must, and decides, shares and wires notifications only on tagged services, without ServiceIds', () => {
    const [policy, ...others] = (resolved().SpokeRole?.Properties.Policies ?? []) as { PolicyDocument: PolicyDocument }[];

    expect(others).toEqual([]);
    expect(policy?.PolicyDocument.Statement).toEqual([
      {
        Sid: 'ReadEndpointServices',
        Effect: 'Allow',
        Action: ['ec2:DescribeVpcEndpointConnections', 'ec2:DescribeVpcEndpointServiceConfigurations', 'ec2:DescribeVpcEndpointConnectionNotifications'],
        Resource: '*',
      },
      {
        Sid: 'DecideOnTaggedServices',
        Effect: 'Allow',
        Action: [
          'ec2:AcceptVpcEndpointConnections',
          'ec2:RejectVpcEndpointConnections',
          'ec2:DescribeVpcEndpointServicePermissions',
          'ec2:ModifyVpcEndpointServicePermissions',
          'ec2:CreateVpcEndpointConnectionNotification',
        ],
        Resource: `arn:aws:ec2:*:${SPOKE_ACCOUNT}:vpc-endpoint-service/*`,
        Condition: { StringEquals: { 'aws:ResourceTag/vpce-gatekeeper:managed': 'true' } },
      },
    ]);
  });

  it('does the same on the services named in ServiceIds, and on no other', () => {
    const named = serviceIds(3);
    const [policy] = (resolved({ ServiceIds: named.join(',') }).SpokeRole?.Properties.Policies ?? []) as { PolicyDocument: PolicyDocument }[];
    const tagged = policy?.PolicyDocument.Statement.find((statement) => statement.Sid === 'DecideOnTaggedServices');
    const byName = policy?.PolicyDocument.Statement.find((statement) => statement.Sid === 'DecideOnNamedServices');

    expect(byName).toEqual({
      Sid: 'DecideOnNamedServices',
      Effect: 'Allow',
      Action: tagged?.Action,
      Resource: named.map((id) => `arn:*:ec2:*:*:vpc-endpoint-service/${id}`),
    });
  });

  it('takes at most 90 named services, the most its role policy holds well under IAM\'s limit', () => {
    const { MaxLength = 0, AllowedPattern = '' } = template.Parameters?.ServiceIds ?? {};
    const most = serviceIds(SPOKE_NAMED_SERVICES).join(',');

    expect(MaxLength).toBe(most.length);
    expect(new RegExp(AllowedPattern).test(most)).toBe(true);
    expect(new RegExp(AllowedPattern).test('vpce-svc-0123456789abcdef0,svc-oops')).toBe(false);
    expect(template.Parameters?.ServiceIds?.Description).toMatch(/at most 90/);
  });

  it('creates the role once per account: in the Region RoleRegion names, or in every stack when it is empty', () => {
    const createsRole = (region: string, roleRegion: string) => holds(template, 'CreateRole', { ...deployed({ RoleRegion: roleRegion }), region });

    expect(createsRole('eu-west-1', '')).toBe(true);
    expect(createsRole('eu-west-1', 'eu-west-1')).toBe(true);
    expect(createsRole('ap-southeast-2', 'eu-west-1')).toBe(false);
    expect(template.Resources.SpokeRole?.Condition).toBe('CreateRole');
    expect(template.Outputs.RoleArn?.Condition).toBe('CreateRole');
  });

  it('names no account and exports nothing, so that a StackSet can deploy it anywhere', () => {
    expect(text).not.toMatch(/\b\d{12}\b/);
    expect(text).not.toMatch(/Export:/);
  });

  const roleAt = (named: number) => {
    const at: Deployment = { ...LONGEST, parameters: { ...deployed().parameters, GatekeeperStage: LONG_STAGE, ServiceIds: serviceIds(named).join(','), ExternalId: 'x'.repeat(256) } };
    const role = resolve(template, template.Resources.SpokeRole?.Properties, at) as { Policies: { PolicyDocument: unknown }[]; AssumeRolePolicyDocument: unknown };
    return { role, at, inline: role.Policies.reduce((total, policy) => total + policySize(policy.PolicyDocument), 0) };
  };

  it("keeps the role's policies well under IAM's limits with 90 named services", () => {
    const { role, at, inline } = roleAt(SPOKE_NAMED_SERVICES);
    const topicPolicy = resolve(template, template.Resources.NotificationsTopicPolicy?.Properties.PolicyDocument, at);

    expect(inline).toBeLessThan(IAM_INLINE_ROLE_POLICIES * WELL_UNDER);
    expect(policySize(role.AssumeRolePolicyDocument)).toBeLessThan(IAM_TRUST_POLICY * WELL_UNDER);
    expect(policySize(topicPolicy)).toBeLessThan(IAM_MANAGED_POLICY);
  });

  it("would pass IAM's limit with 200 named services: the reason for the maximum (tag them instead)", () => {
    expect(roleAt(200).inline).toBeGreaterThan(IAM_INLINE_ROLE_POLICIES);
    expect(roleAt(0).inline).toBeLessThan(IAM_INLINE_ROLE_POLICIES * 0.2);
  });
});

describe('the spokes and services parameters', () => {
  it('parses account:region entries, drops duplicates, and refuses anything else naming it', () => {
    expect(spokes.parseSpokes(' 222233334444:eu-west-1, 555566667777:ap-southeast-2,222233334444:eu-west-1,')).toEqual([
      { accountId: '222233334444', region: 'eu-west-1' },
      { accountId: '555566667777', region: 'ap-southeast-2' },
    ]);
    expect(spokes.parseSpokes('')).toEqual([]);
    expect(() => spokes.parseSpokes('222233334444:eu-west-1,22223333444:eu-west-1,222233334444,222233334444:eu-west-1:x,eu-west-1:222233334444')).toThrow(
      'param "spokes" holds entries that are not account:region (such as 222233334444:eu-west-1): 22223333444:eu-west-1, 222233334444, 222233334444:eu-west-1:x, eu-west-1:222233334444',
    );
  });

  it('takes at most 30 spokes and 50 named services, and says to tag the others', () => {
    expect(spokes.parseSpokes(spokeList(spokes.MAX_SPOKES).join(','))).toHaveLength(30);
    expect(() => spokes.parseSpokes(spokeList(31).join(','))).toThrow('param "spokes" names 31 spokes; a stage takes at most 30');
    expect(endpointServices.MAX_NAMED_SERVICES).toBe(50);
    expect(endpointServices.parseServiceIds(serviceIds(50).join(','))).toHaveLength(50);
    expect(() => endpointServices.parseServiceIds(serviceIds(200).join(','))).toThrow(
      'param "serviceIds" names 200 services; at most 50 fit in a function\'s environment (Lambda\'s 4 KB). Tag the others vpce-gatekeeper:managed=true and set reconcileTaggedServices=true',
    );
  });

  it(
    'refuses to package spokes without the external id their roles ask for',
    async () => {
      await expect(packageStack(['spokes=222233334444:eu-west-1'])).rejects.toThrow(/param "spokeExternalId" must be set with "spokes"/);
    },
    PACKAGE_TIMEOUT_MS,
  );
});

// 200 services: the 50 serviceIds may name, and 150 more by tag (reconcileTaggedServices), which the
// template never sees. The roles act on the tagged services of the account, none by name.
describe('a hub with 30 spokes and 200 services (50 named, the others tagged), Slack on, packaged', () => {
  let template: Template;
  const roles = ['OnConnectionNotificationRole', 'ApprovalsApiRole', 'ReconcileRole'];
  const named = serviceIds(50);
  const fleet = spokeList(spokes.MAX_SPOKES);
  const names = spokes.spokeNames('vpce-gatekeeper', LONG_STAGE);

  beforeAll(async () => {
    template = await readTemplate(
      await packageStack(
        [
          `serviceIds=${named.join(',')}`,
          `spokes=${fleet.join(',')}`,
          'slackChannel=C0123456789',
          `slackApprovers=${Array.from({ length: 50 }, (_, i) => `U${String(i).padStart(10, '0')}`).join(',')}`,
          `slackBotTokenParameter=/${'p'.repeat(200)}`,
          `slackSigningSecretParameter=/${'q'.repeat(200)}`,
          `spokeExternalId=${'x'.repeat(256)}`,
          'reconcileTaggedServices=true',
          `organizationsRoleArn=arn:aws:iam::111111111111:role/${'r'.repeat(64)}`,
        ],
        LONG_STAGE,
      ),
    );
  }, PACKAGE_TIMEOUT_MS);

  afterAll(removePackages);

  it("lets the hub's inbound topic and each spoke's topic send to the notification queue, and nothing else", () => {
    const policy = resolve(template, template.Resources.NotificationsQueuePolicy?.Properties.PolicyDocument, LONGEST) as PolicyDocument;
    const [statement, ...others] = policy.Statement;

    expect(others).toEqual([]);
    expect(statement).toMatchObject({ Effect: 'Allow', Principal: { Service: 'sns.amazonaws.com' }, Action: 'sqs:SendMessage' });
    expect(statement?.Condition?.ArnEquals?.['aws:SourceArn']).toEqual([
      `arn:aws-us-gov:sns:ap-southeast-2:${HUB_ACCOUNT}:vpce-gatekeeper-${LONG_STAGE}-notifications`,
      ...fleet.map((spoke) => {
        const [accountId, region] = spoke.split(':');
        return `arn:aws-us-gov:sns:${region}:${accountId}:${names.topicName}`;
      }),
    ]);
    expect(policySize(policy)).toBeLessThan(SQS_QUEUE_POLICY * WELL_UNDER);
  });

  it('lets every function assume the spoke role by its one name, and the notification function confirm the spokes\' subscriptions', () => {
    for (const role of roles) {
      const statements = inlinePolicies(template, role).flatMap((policy) => policy.Statement);
      const assume = statements.filter((statement) => actionsOf(statement).includes('sts:AssumeRole') && statement.Sid === 'AssumeSpokeRole');
      const confirm = statements.filter((statement) => actionsOf(statement).includes('sns:ConfirmSubscription'));

      expect(assume).toEqual([{ Sid: 'AssumeSpokeRole', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:iam::*:role/${names.roleName}` } }]);
      expect(confirm).toEqual(
        role === 'OnConnectionNotificationRole'
          ? [{ Sid: 'ConfirmSpokeSubscriptions', Effect: 'Allow', Action: 'sns:ConfirmSubscription', Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:sns:*:*:${names.topicName}` } }]
          : [],
      );
    }
  });

  it('tells every function its spokes and their topic name', () => {
    for (const fn of ['OnConnectionNotificationLambdaFunction', 'ApprovalsApiLambdaFunction', 'ReconcileLambdaFunction']) {
      const { Variables } = template.Resources[fn]?.Properties.Environment as { Variables: Record<string, unknown> };
      expect(Variables).toMatchObject({ SPOKES: fleet.join(','), SPOKE_TOPIC_NAME: names.topicName });
      // Every value at its longest (256-character external ids, 30 spokes, 50 named services): under Lambda's hard limit with a tenth to spare.
      expect(policySize(resolve(template, Variables, LONGEST))).toBeLessThan(LAMBDA_ENVIRONMENT * 0.9);
    }
  });

  it('names no spoke and no service in any role policy: they grow with neither', () => {
    const policies = JSON.stringify(Object.keys(template.Resources).filter((id) => template.Resources[id]?.Type === 'AWS::IAM::Role').map((role) => inlinePolicies(template, role)));
    for (const spoke of fleet) expect(policies).not.toContain(spoke.split(':')[0]);
    for (const serviceId of named) expect(policies).not.toContain(serviceId);
  });

  it('lets every deciding role act only on the endpoint services of its account tagged managed', () => {
    const deciding = ['OnConnectionNotificationRole', 'ApprovalsApiRole', 'ReconcileRole', 'SlackInteractionsRole'];
    for (const role of deciding) {
      const statements = inlinePolicies(template, role).flatMap((policy) => policy.Statement);
      const acting = statements.filter((statement) => actionsOf(statement).some((action) => /^ec2:(Accept|Reject|Modify|Create)/.test(action)));
      expect(acting.length, role).toBeGreaterThan(0);
      for (const statement of acting) {
        expect(statement.Resource, role).toEqual({ 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-endpoint-service/*' });
        expect(statement.Condition, role).toEqual({ StringEquals: { 'aws:ResourceTag/vpce-gatekeeper:managed': 'true' } });
      }
    }
    const reconcilerActs = inlinePolicies(template, 'ReconcileRole').flatMap((policy) => policy.Statement).flatMap(actionsOf);
    expect(reconcilerActs).toEqual(expect.arrayContaining(['ec2:CreateVpcEndpointConnectionNotification', 'ec2:DescribeVpcEndpointConnectionNotifications']));
  });

  // IAM's limits (IAM quotas, default): a role's inline policies 10,240 characters together, a trust
  // policy 2,048, a managed policy 6,144; white space is not counted.
  it("keeps every role's policies well under IAM's limits", () => {
    let roleCount = 0;
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      if (resource.Type === 'AWS::IAM::Role') {
        roleCount++;
        const inline = resolve(template, inlinePolicies(template, logicalId), LONGEST) as unknown[];
        const inlineSize = inline.reduce<number>((total, policy) => total + policySize(policy), 0);
        expect(inlineSize, `${logicalId}'s inline policies`).toBeLessThan(IAM_INLINE_ROLE_POLICIES * WELL_UNDER);
        const trust = resolve(template, resource.Properties.AssumeRolePolicyDocument, LONGEST);
        expect(policySize(trust), `${logicalId}'s trust policy`).toBeLessThan(IAM_TRUST_POLICY * WELL_UNDER);
      }
      if (resource.Type === 'AWS::IAM::ManagedPolicy' || resource.Type === 'AWS::IAM::Policy') {
        expect(policySize(resolve(template, resource.Properties.PolicyDocument, LONGEST)), logicalId).toBeLessThan(IAM_MANAGED_POLICY * WELL_UNDER);
      }
    }
    expect(roleCount).toBeGreaterThanOrEqual(5);
  });
});
