import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BY_STATE_SHARD_INDEX, keys, LEGACY_BY_STATE_INDEX, TTL_ATTRIBUTE, tableDefinition } from '../../lib/aws/table';
import { SLACK_EVENT_TYPES } from '../../lib/slack/message-card';
import { METRIC } from '../../lib/metrics';
import { DEPLOYED_QUEUE_DEFAULTS } from '../../local/lambda/deployed-defaults';
import { invalidMapping } from '../../local/lambda/event-source-mapping';
// @ts-expect-error: CommonJS without types, as serverless.yml loads it
import { CONNECTION_KEY_PREFIX, SLACK_MESSAGE_KEY_PREFIX } from '../../stack/slack.cjs';
import {
  type CfnResource,
  PACKAGE_TIMEOUT_MS,
  packageStack as packageWith,
  type PolicyDocument,
  readTemplate,
  removePackages,
  type Statement,
  type Template,
  withConditionsApplied,
} from './package-stack';

// Packages the real serverless.yml (offline, without AWS credentials) and pins what the
// deployed stack must guarantee: who may publish, what the handler may touch, where
// failures go, and that the table is the one the code expects.

const SERVICE_IDS = ['vpce-svc-0123456789abcdef0', 'vpce-svc-0fedcba9876543210'];
/** The deciding roles act on any endpoint service of the stage's account and Region that carries the managed tag, none by name. */
const SERVICES_OF_THE_ACCOUNT = 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-endpoint-service/*';
const TAGGED_MANAGED = { StringEquals: { 'aws:ResourceTag/vpce-gatekeeper:managed': 'true' } };

afterAll(removePackages);

/** Packages with these managed services (none: the parameter left out) and other parameters. */
function packageStack(serviceIds: string | undefined, params: string[] = []): Promise<string> {
  return packageWith([...(serviceIds === undefined ? [] : [`serviceIds=${serviceIds}`]), ...params]);
}

/** The files of a .zip archive by name (stored or deflated entries, as serverless writes them). */
function unzip(archive: Buffer): Map<string, Buffer> {
  const endOfDirectory = archive.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (endOfDirectory < 0) throw new Error('not a zip archive');
  const entryCount = archive.readUInt16LE(endOfDirectory + 10);
  let entry = archive.readUInt32LE(endOfDirectory + 16);
  const files = new Map<string, Buffer>();
  for (let i = 0; i < entryCount; i += 1) {
    const method = archive.readUInt16LE(entry + 10);
    const compressedSize = archive.readUInt32LE(entry + 20);
    const nameLength = archive.readUInt16LE(entry + 28);
    const extraLength = archive.readUInt16LE(entry + 30);
    const commentLength = archive.readUInt16LE(entry + 32);
    const localHeader = archive.readUInt32LE(entry + 42);
    const name = archive.toString('utf8', entry + 46, entry + 46 + nameLength);
    const dataStart =
      localHeader + 30 + archive.readUInt16LE(localHeader + 26) + archive.readUInt16LE(localHeader + 28);
    const data = archive.subarray(dataStart, dataStart + compressedSize);
    files.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    entry += 46 + nameLength + extraLength + commentLength;
  }
  return files;
}

const asArray = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

function resourcesOfType(template: Template, type: string): [string, CfnResource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

function resource(template: Template, logicalId: string): CfnResource {
  const found = template.Resources[logicalId];
  if (!found) throw new Error(`no resource ${logicalId} in the template`);
  return found;
}

/** A role's own inline statements, as the stack's conditions leave them. */
function roleStatements(template: Template, roleLogicalId: string): Statement[] {
  const policies = resource(template, roleLogicalId).Properties.Policies as { PolicyDocument: PolicyDocument }[];
  return withConditionsApplied(template, policies).flatMap((policy) => policy.PolicyDocument.Statement);
}

function allRoleStatements(template: Template): Statement[] {
  return resourcesOfType(template, 'AWS::IAM::Role').flatMap(([logicalId]) => roleStatements(template, logicalId));
}

function statementsAllowing(template: Template, action: string): Statement[] {
  return allRoleStatements(template).filter((statement) => asArray(statement.Action).includes(action));
}

/** `{ 'Fn::Sub': 'arn:...' }` or a plain string, as the ARN text it stands for. */
function arnText(value: unknown): string {
  if (typeof value === 'string') return value;
  const sub = (value as { 'Fn::Sub'?: unknown })['Fn::Sub'];
  if (typeof sub === 'string') return sub;
  throw new Error(`not an ARN string or Fn::Sub: ${JSON.stringify(value)}`);
}

function functionResource(template: Template): CfnResource {
  return resource(template, 'OnConnectionNotificationLambdaFunction');
}

describe('the packaged stack, with two managed endpoint services', () => {
  let outDir: string;
  let template: Template;

  beforeAll(async () => {
    outDir = await packageStack(SERVICE_IDS.join(','));
    template = await readTemplate(outDir);
  }, PACKAGE_TIMEOUT_MS);

  it('creates one connection notification per managed service, for all four events, to the inbound topic', () => {
    const notifications = resourcesOfType(template, 'AWS::EC2::VPCEndpointConnectionNotification');

    expect(notifications.map(([, n]) => n.Properties.ServiceId).sort()).toEqual([...SERVICE_IDS].sort());
    for (const [, notification] of notifications) {
      expect([...(notification.Properties.ConnectionEvents as string[])].sort()).toEqual([
        'Accept',
        'Connect',
        'Delete',
        'Reject',
      ]);
      expect(notification.Properties.ConnectionNotificationArn).toEqual({ Ref: 'NotificationsTopic' });
      expect(asArray(notification.DependsOn ?? [])).toContain('NotificationsTopicPolicy');
    }
  });

  it('lets only vpce.amazonaws.com publish to the inbound topic, and only for this account', () => {
    const [[, topicPolicy] = []] = resourcesOfType(template, 'AWS::SNS::TopicPolicy');
    const statements = (topicPolicy?.Properties.PolicyDocument as PolicyDocument).Statement;

    expect(topicPolicy?.Properties.Topics).toEqual([{ Ref: 'NotificationsTopic' }]);
    expect(statements).toHaveLength(1);
    for (const statement of statements) {
      expect(statement.Effect).toBe('Allow');
      expect(statement.Principal).toEqual({ Service: 'vpce.amazonaws.com' });
      expect(asArray(statement.Action).map((a) => a.toLowerCase())).toEqual(['sns:publish']);
      expect(statement.Condition?.StringEquals?.['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
      expect(arnText(statement.Condition?.ArnLike?.['aws:SourceArn'])).toBe(
        'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-endpoint-service/*',
      );
    }
  });

  it('delivers the inbound topic into the notifications queue, raw, and lets only that topic send to it', () => {
    const subscriptions = resourcesOfType(template, 'AWS::SNS::Subscription').map(([, s]) => s.Properties);
    const [[, queuePolicy] = []] = resourcesOfType(template, 'AWS::SQS::QueuePolicy');
    const statements = (queuePolicy?.Properties.PolicyDocument as PolicyDocument).Statement;

    expect(subscriptions).toEqual([
      {
        TopicArn: { Ref: 'NotificationsTopic' },
        Protocol: 'sqs',
        Endpoint: { 'Fn::GetAtt': ['NotificationsQueue', 'Arn'] },
        RawMessageDelivery: true,
      },
    ]);
    expect(queuePolicy?.Properties.Queues).toEqual([{ Ref: 'NotificationsQueue' }]);
    expect(statements).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'sns.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: { 'Fn::GetAtt': ['NotificationsQueue', 'Arn'] },
        // Without spokes, the inbound topic alone (test/stack/fleet.test.ts: with them).
        Condition: { ArnEquals: { 'aws:SourceArn': [{ Ref: 'NotificationsTopic' }] } },
      }),
    ]);
  });

  it('consumes the queue in batches, reporting item failures, with bounded concurrency, at the deployed defaults', () => {
    const mappings = resourcesOfType(template, 'AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties);

    expect(mappings).toEqual([
      expect.objectContaining({
        EventSourceArn: { 'Fn::GetAtt': ['NotificationsQueue', 'Arn'] },
        FunctionName: { 'Fn::GetAtt': ['OnConnectionNotificationLambdaFunction', 'Arn'] },
        BatchSize: DEPLOYED_QUEUE_DEFAULTS.batchSize,
        MaximumBatchingWindowInSeconds: DEPLOYED_QUEUE_DEFAULTS.batchingWindowSeconds,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: DEPLOYED_QUEUE_DEFAULTS.maximumConcurrency },
        Enabled: true,
      }),
    ]);
    // What CreateEventSourceMapping would refuse (the local mapping refuses the same).
    expect(
      invalidMapping({
        batchSize: DEPLOYED_QUEUE_DEFAULTS.batchSize,
        maximumBatchingWindowMs: DEPLOYED_QUEUE_DEFAULTS.batchingWindowSeconds * 1000,
        maximumConcurrency: DEPLOYED_QUEUE_DEFAULTS.maximumConcurrency,
      }),
    ).toBeUndefined();
    // Not invoked asynchronously any more: no retries or destinations of its own.
    const invokeConfigs = resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig').map(([, c]) => c.Properties.FunctionName);
    expect(invokeConfigs).not.toContainEqual({ Ref: 'OnConnectionNotificationLambdaFunction' });
  });

  it('encrypts the queue, hides a batch six times the function timeout, and moves a message received 5 times to the dead-letter queue', () => {
    const queue = resource(template, 'NotificationsQueue').Properties;
    const deadLetters = resource(template, 'DeadLetterQueue').Properties;

    expect(queue.SqsManagedSseEnabled).toBe(true);
    expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * (functionResource(template).Properties.Timeout as number));
    expect(queue.VisibilityTimeout).toBe(DEPLOYED_QUEUE_DEFAULTS.visibilityTimeoutSeconds);
    // A batch whose invocation died comes back only after the claims it took have expired,
    // so the redelivery finishes them from EC2's state instead of leaving them to a dead holder.
    const lease = Number((functionResource(template).Properties.Environment as { Variables: Record<string, unknown> }).Variables.DECISION_LEASE_SECONDS);
    expect(queue.VisibilityTimeout).toBeGreaterThan(lease);
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] },
      maxReceiveCount: DEPLOYED_QUEUE_DEFAULTS.maxReceiveCount,
    });
    expect(deadLetters.SqsManagedSseEnabled).toBe(true);
    // SQS keeps a dead letter's original enqueue time: the DLQ must keep messages longer.
    expect(deadLetters.MessageRetentionPeriod).toBe(14 * 24 * 60 * 60);
    expect(deadLetters.MessageRetentionPeriod as number).toBeGreaterThan(queue.MessageRetentionPeriod as number);
  });

  it('lets only the notification queue dead-letter into the dead-letter queue', () => {
    const queueName = resource(template, 'NotificationsQueue').Properties.QueueName as string;
    const policy = resource(template, 'DeadLetterQueue').Properties.RedriveAllowPolicy as { redrivePermission: string; sourceQueueArns: { 'Fn::Sub': string }[] };

    expect(policy.redrivePermission).toBe('byQueue');
    expect(policy.sourceQueueArns).toEqual([{ 'Fn::Sub': `arn:\${AWS::Partition}:sqs:\${AWS::Region}:\${AWS::AccountId}:${queueName}` }]);
  });

  it('lets the notification function take from its queue and nothing more, and no function send to a queue', () => {
    const statements = roleStatements(template, 'OnConnectionNotificationRole');
    const onQueues = statements.filter((statement) => asArray(statement.Action).some((action) => action.startsWith('sqs:')));
    const table = statements.find((statement) => statement.Sid === 'ReadWriteStateTable');

    expect(onQueues).toEqual([
      expect.objectContaining({
        Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
        Resource: { 'Fn::GetAtt': ['NotificationsQueue', 'Arn'] },
      }),
    ]);
    expect(statementsAllowing(template, 'sqs:SendMessage')).toEqual([]);
    // UpdateItem only to count each change of state (ADD on the service's counts); never Scan nor an index.
    expect(asArray(table?.Action ?? []).sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    expect(table?.Resource).toEqual({ 'Fn::GetAtt': ['StateTable', 'Arn'] });
  });

  it('allows accepting and rejecting connections only on the endpoint services tagged managed, naming none', () => {
    for (const action of ['ec2:AcceptVpcEndpointConnections', 'ec2:RejectVpcEndpointConnections']) {
      const statements = statementsAllowing(template, action);

      expect(statements.length).toBeGreaterThan(0);
      for (const statement of statements) {
        expect(asArray(statement.Resource).map(arnText)).toEqual([SERVICES_OF_THE_ACCOUNT]);
        expect(statement.Condition).toEqual(TAGGED_MANAGED);
      }
    }
  });

  it("grants Resource '*' only to EC2 Describe actions and, without a role to assume, Organizations' reads, which allow nothing narrower", () => {
    const wildcardActions = allRoleStatements(template)
      .filter((statement) => asArray(statement.Resource).includes('*'))
      .flatMap((statement) => asArray(statement.Action));

    expect([...new Set(wildcardActions)].sort()).toEqual([
      'ec2:DescribeVpcEndpointConnectionNotifications',
      'ec2:DescribeVpcEndpointConnections',
      'ec2:DescribeVpcEndpointServiceConfigurations',
      'organizations:DescribeAccount',
      'organizations:DescribeOrganization',
      'organizations:DescribeOrganizationalUnit',
      'organizations:ListAccounts',
      'organizations:ListAccountsForParent',
      'organizations:ListOrganizationalUnitsForParent',
      'organizations:ListParents',
      'organizations:ListRoots',
    ]);
  });

  it('lets the functions publish to the outbound topic only', () => {
    const published = statementsAllowing(template, 'sns:Publish').flatMap((s) => asArray(s.Resource));

    expect(published.length).toBeGreaterThan(0);
    for (const topic of published) expect(topic).toEqual({ Ref: 'DecisionsTopic' });
  });

  it('scopes table access to the state table and its indexes', () => {
    for (const statement of statementsAllowing(template, 'dynamodb:Query')) {
      const [table, ...indexes] = asArray(statement.Resource);
      expect(table).toEqual({ 'Fn::GetAtt': ['StateTable', 'Arn'] });
      for (const index of indexes) expect(arnText(index)).toMatch(/^\$\{StateTable\.Arn\}\/index\/(\*|byStateShard|byServiceState)$/);
    }
    expect(statementsAllowing(template, 'dynamodb:Scan')).toEqual([]);
  });

  it('lets each function write logs only to its own log group', () => {
    for (const [logicalId, fn] of resourcesOfType(template, 'AWS::Lambda::Function')) {
      const functionKey = logicalId.replace(/LambdaFunction$/, '');
      const logGroupName = resource(template, `${functionKey}LogGroup`).Properties.LogGroupName as string;
      const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const logResources = roleStatements(template, roleId)
        .filter((statement) => asArray(statement.Action).includes('logs:PutLogEvents'))
        .flatMap((statement) => asArray(statement.Resource).map(arnText));

      expect(logResources).toEqual([`arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:${logGroupName}:*`]);
    }
  });

  it("puts every role on the stage's IAM path, which the spokes' and the Organizations role trust", () => {
    const roles = resourcesOfType(template, 'AWS::IAM::Role');

    expect(roles.length).toBeGreaterThan(0);
    for (const [, role] of roles) expect(role.Properties.Path).toBe('/vpce-gatekeeper/test/');
  });

  it('gives every function a role of its own instead of the shared provider role', () => {
    const roles = resourcesOfType(template, 'AWS::Lambda::Function').map(([, fn]) => fn.Properties.Role);
    const roleIds = roles.map((role) => (role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]);

    expect(template.Resources.IamRoleLambdaExecution).toBeUndefined();
    expect(new Set(roleIds).size).toBe(roleIds.length);
    for (const roleId of roleIds) expect(resource(template, roleId).Type).toBe('AWS::IAM::Role');
  });

  it('declares the table exactly as lib/aws/table.ts describes it, and keeps it on stack deletion', () => {
    const table = resource(template, 'StateTable');
    const { TableName: _name, ...expected } = tableDefinition('unused');
    const byName = (a: { AttributeName?: string }, b: { AttributeName?: string }) =>
      String(a.AttributeName).localeCompare(String(b.AttributeName));

    const properties = withConditionsApplied(template, table.Properties);
    expect(properties.BillingMode).toBe(expected.BillingMode);
    expect(properties.KeySchema).toEqual(expected.KeySchema);
    expect(properties.GlobalSecondaryIndexes).toEqual(expected.GlobalSecondaryIndexes);
    expect((properties.GlobalSecondaryIndexes as { IndexName: string }[])[0]?.IndexName).toBe(BY_STATE_SHARD_INDEX);
    expect([...(properties.AttributeDefinitions as { AttributeName: string }[])].sort(byName)).toEqual(
      [...(expected.AttributeDefinitions ?? [])].sort(byName),
    );
    expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    // The AWS owned key: encrypted at rest, and no KMS request billed (the AWS managed key's would be).
    expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: false });
    expect(table.Properties.TimeToLiveSpecification).toEqual({ AttributeName: TTL_ATTRIBUTE, Enabled: true });
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });

  it('runs the handler on Node.js 22 on arm64, configured with the stack it belongs to', () => {
    const fn = functionResource(template).Properties;
    const variables = (fn.Environment as { Variables: Record<string, unknown> }).Variables;

    expect(fn.Runtime).toBe('nodejs22.x');
    expect(fn.Architectures).toEqual(['arm64']);
    expect(variables).toMatchObject({
      TABLE_NAME: { Ref: 'StateTable' },
      OUTBOUND_TOPIC_ARN: { Ref: 'DecisionsTopic' },
      MANAGED_SERVICE_IDS: SERVICE_IDS.join(','),
      NODE_OPTIONS: '--enable-source-maps',
    });
    expect(variables.POWERTOOLS_LOG_LEVEL).toEqual(expect.any(String));
    // A lease shorter than the timeout could be taken over from an invocation still running.
    expect(Number(variables.DECISION_LEASE_SECONDS)).toBeGreaterThan(fn.Timeout as number);
  });

  it('outputs the topic ARNs, the table name, the queue (its ARN for the spokes) and the dead-letter queue (its ARN for the message move)', () => {
    expect(template.Outputs).toMatchObject({
      NotificationsTopicArn: { Value: { Ref: 'NotificationsTopic' } },
      DecisionsTopicArn: { Value: { Ref: 'DecisionsTopic' } },
      StateTableName: { Value: { Ref: 'StateTable' } },
      NotificationsQueueUrl: { Value: { Ref: 'NotificationsQueue' } },
      NotificationsQueueArn: { Value: { 'Fn::GetAtt': ['NotificationsQueue', 'Arn'] } },
      DeadLetterQueueUrl: { Value: { Ref: 'DeadLetterQueue' } },
      DeadLetterQueueArn: { Value: { 'Fn::GetAtt': ['DeadLetterQueue', 'Arn'] } },
    });
  });

  it('ships the console beside the approvals API bundle, which serves it from there', async () => {
    const files = unzip(await readFile(join(outDir, 'approvalsApi.zip')));

    expect(files.has('handlers/http-api.mjs')).toBe(true);
    expect(files.get('console/dist/index.html')?.toString('utf8')).toContain('<script type="module" src="console/app.js">');
    expect(files.get('console/dist/app.js')?.length).toBeGreaterThan(10_000);
    expect(files.has('console/dist/app.css')).toBe(true);
    expect([...files.keys()].filter((name) => name.startsWith('console/src/'))).toEqual([]);
  });

  it('ships the handler as a minified ES module bundle with a require() shim and a source map', async () => {
    const files = unzip(await readFile(join(outDir, 'onConnectionNotification.zip')));
    const bundle = files.get('handlers/on-connection-notification.mjs')?.toString('utf8') ?? '';

    expect(bundle.startsWith("import { createRequire } from 'module'; const require = createRequire(import.meta.url);")).toBe(true);
    expect(bundle).toMatch(/export\s*\{[^}]*\bhandler\b[^}]*\}/);
    expect(bundle).toContain('//# sourceMappingURL=on-connection-notification.mjs.map');
    expect(files.has('handlers/on-connection-notification.mjs.map')).toBe(true);
    // Nothing but the bundle, and the two clients only an OU or organization entry needs
    // (external, loaded on first use) with their dependencies: no TypeScript sources.
    const others = [...files.keys()].filter((name) => !name.startsWith('handlers/on-connection-notification.mjs'));
    expect(others.filter((name) => !name.startsWith('node_modules/'))).toEqual([]);
    expect(others).toEqual(expect.arrayContaining(['node_modules/@aws-sdk/client-organizations/package.json', 'node_modules/@aws-sdk/client-sts/package.json']));
    expect(others.filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))).toEqual([]);
    expect(bundle).not.toMatch(/from\s*"@aws-sdk\/client-(organizations|sts)"/); // never imported at cold start
  });

  describe('the approvals API', () => {
    const routes = () => resourcesOfType(template, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties);

    it('writes an access log of every request, with the caller, the route and the status, kept 30 days', () => {
      const access = resource(template, 'HttpApiStage').Properties.AccessLogSettings as { DestinationArn: unknown; Format: string };
      const [[logGroupId, logGroup] = []] = resourcesOfType(template, 'AWS::Logs::LogGroup').filter(([, group]) =>
        String(group.Properties.LogGroupName).startsWith('/aws/http-api/'),
      );

      expect(logGroup?.Properties).toEqual({ LogGroupName: '/aws/http-api/vpce-gatekeeper-test', RetentionInDays: 30 });
      expect(access.DestinationArn).toEqual({ 'Fn::GetAtt': [logGroupId, 'Arn'] });
      const fields = JSON.parse(access.Format) as Record<string, string>;
      expect(fields).toMatchObject({
        requestId: '$context.requestId',
        caller: '$context.identity.userArn',
        subject: '$context.authorizer.claims.sub',
        routeKey: '$context.routeKey',
        status: '$context.status',
      });
    });

    it("requires IAM authorization (SigV4) on every route but the console's page and static assets, and the catch-all that answers /console/ and 404s", () => {
      const [open, authorized] = partitionConsole(routes());
      expect(authorized.length).toBeGreaterThan(0);
      for (const route of authorized) expect(route).toMatchObject({ AuthorizationType: 'AWS_IAM' });
      expect(open.map((route) => route.RouteKey).sort()).toEqual(['$default', 'GET /console', 'GET /console/{asset}', 'GET /favicon.ico']);
      for (const route of open) expect(route.AuthorizationType ?? 'NONE').toBe('NONE');
    });

    it('is an HTTP API with payload format 2.0, without CORS, and throttled on its stage', () => {
      const [[, api] = []] = resourcesOfType(template, 'AWS::ApiGatewayV2::Api');
      const [[, integration] = []] = resourcesOfType(template, 'AWS::ApiGatewayV2::Integration');
      const settings = resource(template, 'HttpApiStage').Properties.DefaultRouteSettings as Record<string, number>;

      expect(api?.Properties.ProtocolType).toBe('HTTP');
      expect(api?.Properties.CorsConfiguration).toBeUndefined();
      expect(integration?.Properties.PayloadFormatVersion).toBe('2.0');
      expect(settings.ThrottlingRateLimit).toBeGreaterThan(0);
      expect(settings.ThrottlingBurstLimit).toBeGreaterThan(0);
    });

    it('runs on a role of its own that may act only on the managed services and never scan', () => {
      const statements = roleStatements(template, 'ApprovalsApiRole');
      const actions = statements.flatMap((statement) => asArray(statement.Action));
      const decide = statements.find((statement) => asArray(statement.Action).includes('ec2:AcceptVpcEndpointConnections'));

      expect(asArray(decide?.Resource).map(arnText)).toEqual([SERVICES_OF_THE_ACCOUNT]);
      expect(decide?.Condition).toEqual(TAGGED_MANAGED);
      // BatchGetItem and BatchWriteItem: the organization membership cache, for evaluate; UpdateItem: the counts by state.
      expect(actions.filter((action) => action.startsWith('dynamodb:')).sort()).toEqual([
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ]);
      expect(actions).not.toContain('sqs:SendMessage');
    });

    it('gets the approver list from the stage parameter, and the managed services', () => {
      const variables = (resource(template, 'ApprovalsApiLambdaFunction').Properties.Environment as { Variables: Record<string, unknown> }).Variables;

      expect(variables).toMatchObject({ APPROVER_PRINCIPALS: '', APPROVER_GROUPS: '', MANAGED_SERVICE_IDS: SERVICE_IDS.join(',') });
    });
  });

  describe('the reconciler and the alarms', () => {
    const alarm = (logicalId: string) => resource(template, logicalId).Properties;

    it('runs the reconciler on the schedule from the reconcileRate parameter, every 5 minutes by default', () => {
      const rules = resourcesOfType(template, 'AWS::Events::Rule').map(([, rule]) => rule.Properties);

      expect(rules).toContainEqual(
        expect.objectContaining({
          ScheduleExpression: 'rate(5 minutes)',
          State: 'ENABLED',
          Targets: [expect.objectContaining({ Arn: { 'Fn::GetAtt': ['ReconcileLambdaFunction', 'Arn'] } })],
        }),
      );
    });

    it('configures the reconciler with the stack, and a lease longer than its timeout', () => {
      const fn = resource(template, 'ReconcileLambdaFunction').Properties;
      const variables = (fn.Environment as { Variables: Record<string, unknown> }).Variables;

      expect(variables).toMatchObject({
        TABLE_NAME: { Ref: 'StateTable' },
        OUTBOUND_TOPIC_ARN: { Ref: 'DecisionsTopic' },
        MANAGED_SERVICE_IDS: SERVICE_IDS.join(','),
        RECONCILE_TAGGED_SERVICES: 'false',
        POWERTOOLS_METRICS_NAMESPACE: 'vpce-gatekeeper-test',
      });
      expect(Number(variables.DECISION_LEASE_SECONDS)).toBeGreaterThan(fn.Timeout as number);
    });

    it('lets the deciding functions act only on tagged services, with or without reconcileTaggedServices: no policy names a service', () => {
      const statements = roleStatements(template, 'ReconcileRole');
      const deciding = statements.filter((statement) => asArray(statement.Action).includes('ec2:RejectVpcEndpointConnections'));

      expect(deciding.flatMap((statement) => asArray(statement.Resource).map(arnText))).toEqual([SERVICES_OF_THE_ACCOUNT]);
      expect(deciding.map((statement) => statement.Condition)).toEqual([TAGGED_MANAGED]);
      expect(resourcesOfType(template, 'AWS::IAM::Policy')).toEqual([]);
      expect(JSON.stringify(allRoleStatements(template))).not.toMatch(/vpce-svc-/);
    });

    it('has no redrive function: the dead-letter queue is redriven by SQS message move', () => {
      const functions = resourcesOfType(template, 'AWS::Lambda::Function').map(([logicalId]) => logicalId);

      expect(functions.sort()).toEqual(['ApprovalsApiLambdaFunction', 'OnConnectionNotificationLambdaFunction', 'ReconcileLambdaFunction']);
      expect(JSON.stringify(template)).not.toMatch(/RedriveDeadLetters/);
    });

    it('alarms on any dead letter, a notification waiting over 15 minutes, any reconciler error and any revocation limit hit', () => {
      const toAlarms = { AlarmActions: [{ Ref: 'AlarmsTopic' }], ComparisonOperator: 'GreaterThanThreshold', Threshold: 0 };

      expect(alarm('DeadLetterQueueAlarm')).toMatchObject({
        ...toAlarms,
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['DeadLetterQueue', 'QueueName'] } }],
      });
      expect(alarm('NotificationsBacklogAlarm')).toMatchObject({
        ...toAlarms,
        Threshold: 900,
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['NotificationsQueue', 'QueueName'] } }],
      });
      expect(alarm('ReconcileErrorsAlarm')).toMatchObject({
        ...toAlarms,
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'ReconcileLambdaFunction' } }],
      });
      expect(alarm('RevocationLimitAlarm')).toMatchObject({
        ...toAlarms,
        Namespace: 'vpce-gatekeeper-test',
        MetricName: METRIC.revocationLimitHit,
        Dimensions: [{ Name: 'service', Value: 'vpce-gatekeeper' }],
      });
      expect(template.Outputs.AlarmsTopicArn).toEqual(expect.objectContaining({ Value: { Ref: 'AlarmsTopic' } }));
    });
  });
});

describe('the packaged stack, with SSO', () => {
  it(
    'puts every approvals API route behind the JWT authorizer of the configured issuer and audience',
    async () => {
      const template = await readTemplate(
        await packageStack(SERVICE_IDS[0], [
          'jwtIssuerUrl=https://sso.example.com/',
          'jwtAudience=approvals',
          'approverGroups=approvers',
          'consoleClientId=console-app',
          'cliClientId=cli-app',
        ]),
      );
      const [[authorizerId, authorizer] = []] = resourcesOfType(template, 'AWS::ApiGatewayV2::Authorizer');
      const [open, authorized] = partitionConsole(resourcesOfType(template, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties));

      expect(authorizer?.Properties).toMatchObject({
        AuthorizerType: 'JWT',
        // The console's and the CLI's tokens name their clients, so their ids are audiences too.
        JwtConfiguration: { Issuer: 'https://sso.example.com/', Audience: ['approvals', 'console-app', 'cli-app'] },
      });
      for (const route of authorized) expect(route).toMatchObject({ AuthorizationType: 'JWT', AuthorizerId: { Ref: authorizerId } });
      expect(open).toHaveLength(4);
    },
    PACKAGE_TIMEOUT_MS,
  );
});

describe('the stage', () => {
  /** The longest stage packaging takes: every name built from it must fit its service's limit. */
  const LONGEST_STAGE = 'a-stage-of-21-letters';
  /** What each service allows a name of this kind. */
  const NAME_LIMITS: Record<string, number> = {
    FunctionName: 64, // Lambda
    QueueName: 80, // SQS
    TopicName: 256, // SNS
    TableName: 255, // DynamoDB
    AlarmName: 255, // CloudWatch
    LogGroupName: 512, // CloudWatch Logs
  };

  it(
    `of ${LONGEST_STAGE.length} characters gives names that all fit, in a template cfn-lint finds no error in`,
    async () => {
      const outDir = await packageWith([`serviceIds=${SERVICE_IDS[0]}`], LONGEST_STAGE);
      const template = await readTemplate(outDir);

      const names = Object.values(template.Resources).flatMap((resource) =>
        Object.entries(resource.Properties ?? {}).filter(([key, value]) => key in NAME_LIMITS && typeof value === 'string') as [string, string][],
      );
      expect(names.filter(([key]) => key === 'FunctionName')).toHaveLength(3);
      expect(Math.max(...names.filter(([key]) => key === 'FunctionName').map(([, name]) => name.length))).toBe(64); // the longest fits exactly
      for (const [key, name] of names) expect(name.length, `${key} ${name}`).toBeLessThanOrEqual(NAME_LIMITS[key] ?? 0);

      const lint = spawnSync('cfn-lint', ['--format', 'json', join(outDir, 'cloudformation-template-update-stack.json')], { encoding: 'utf8' });
      if (lint.error) return; // cfn-lint is not installed (pip install cfn-lint): the names are checked above
      const findings = JSON.parse(lint.stdout || '[]') as { Level: string; Rule: { Id: string }; Message: string }[];
      expect(findings.filter((finding) => finding.Level === 'Error')).toEqual([]);
      // What packaging itself leaves: DependsOn beside a GetAtt, and conditions over the parameters it resolved.
      expect(new Set(findings.map((finding) => finding.Rule.Id))).toEqual(new Set(['W3005', 'W8003']));
    },
    PACKAGE_TIMEOUT_MS,
  );

  it.each([
    ['a stage of 22 characters', 'a-stage-of-22-letters2', /stage "a-stage-of-22-letters2" has 22 characters; at most 21 fit, since the function .* must stay within Lambda's 64/],
    ['an underscore', 'my_stage', /stage "my_stage" must start with a letter and hold only letters, digits and hyphens/],
    ['a leading digit', '2024', /stage "2024" must start with a letter/],
  ])(
    'with %s is refused at package time, saying why',
    async (_, stage, message) => {
      await expect(packageWith([`serviceIds=${SERVICE_IDS[0]}`], stage)).rejects.toThrow(message);
    },
    PACKAGE_TIMEOUT_MS,
  );
});

describe('the packaged stack, with its own queue settings', () => {
  it(
    'takes the batch size, batching window, concurrency and receives from the stage parameters',
    async () => {
      const template = await readTemplate(
        await packageStack(SERVICE_IDS[0], ['notificationBatchSize=10', 'notificationBatchingWindow=5', 'notificationMaxConcurrency=20', 'notificationMaxReceiveCount=3']),
      );
      const [[, mapping] = []] = resourcesOfType(template, 'AWS::Lambda::EventSourceMapping');

      expect(mapping?.Properties).toMatchObject({ BatchSize: 10, MaximumBatchingWindowInSeconds: 5, ScalingConfig: { MaximumConcurrency: 20 } });
      // SQS reads maxReceiveCount as a number or a numeric string; a CLI parameter arrives as the latter.
      expect(Number((resource(template, 'NotificationsQueue').Properties.RedrivePolicy as { maxReceiveCount: unknown }).maxReceiveCount)).toBe(3);
    },
    PACKAGE_TIMEOUT_MS,
  );
});

describe('the packaged stack of a stage whose table is not migrated yet (legacyConnections)', () => {
  it(
    "keeps the old byState index beside the new ones, tells the functions, and lets the reconciler move connections",
    async () => {
      const template = await readTemplate(await packageStack(SERVICE_IDS[0], ['legacyConnections=true']));
      const table = withConditionsApplied(template, resource(template, 'StateTable').Properties);
      const indexes = (table.GlobalSecondaryIndexes as { IndexName: string }[]).map((index) => index.IndexName);
      const environment = (resource(template, 'OnConnectionNotificationLambdaFunction').Properties.Environment as { Variables: Record<string, unknown> }).Variables;

      expect(indexes).toEqual([...(tableDefinition('unused').GlobalSecondaryIndexes ?? []).map((index) => index.IndexName), LEGACY_BY_STATE_INDEX]);
      expect((table.AttributeDefinitions as { AttributeName: string }[]).map((attribute) => attribute.AttributeName)).toEqual(
        expect.arrayContaining(['gsi1pk', 'gsi1sk']),
      );
      expect(environment.LEGACY_CONNECTIONS).toBe('true');
      expect(roleStatements(template, 'ReconcileRole').some((statement) => asArray(statement.Action).includes('dynamodb:Scan'))).toBe(true);
      for (const role of ['OnConnectionNotificationRole', 'ApprovalsApiRole', 'ReconcileRole']) {
        expect(roleStatements(template, role).some((statement) => asArray(statement.Action).includes('dynamodb:DeleteItem'))).toBe(true);
      }
    },
    PACKAGE_TIMEOUT_MS,
  );
});

describe('the packaged stack, without managed endpoint services', () => {
  it(
    'packages with no connection notifications and lets the handler decide on any endpoint service of the account',
    async () => {
      const template = await readTemplate(await packageStack(undefined));

      expect(resourcesOfType(template, 'AWS::EC2::VPCEndpointConnectionNotification')).toEqual([]);
      expect(
        new Set(statementsAllowing(template, 'ec2:AcceptVpcEndpointConnections').flatMap((s) => asArray(s.Resource).map(arnText))),
      ).toEqual(new Set(['arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-endpoint-service/*']));
      expect(
        (functionResource(template).Properties.Environment as { Variables: Record<string, unknown> }).Variables
          .MANAGED_SERVICE_IDS,
      ).toBe('');
    },
    PACKAGE_TIMEOUT_MS,
  );

  it(
    'refuses to package a service id that is not vpce-svc-…, naming it',
    async () => {
      await expect(packageStack('vpce-svc-0123456789abcdef0,svc-oops')).rejects.toThrow(/not vpce-svc-…: svc-oops/);
    },
    PACKAGE_TIMEOUT_MS,
  );
});

/** Routes of the console's page and assets and the catch-all (no authorizer), and the others. */
function partitionConsole(routes: Record<string, unknown>[]): [Record<string, unknown>[], Record<string, unknown>[]] {
  const isConsole = (route: Record<string, unknown>) => /^(GET \/(console(\/|$)|favicon\.ico$)|\$default$)/.test(String(route.RouteKey));
  return [routes.filter(isConsole), routes.filter((route) => !isConsole(route))];
}

describe('the packaged stack, with Slack approvals', () => {
  const SLACK_PARAMS = [
    'slackChannel=C0123456789',
    'slackApprovers=U0123ABCD,S0456EFGH',
    'slackBotTokenParameter=/vpce-gatekeeper/test/slack-bot-token',
    'slackSigningSecretParameter=/vpce-gatekeeper/test/slack-signing-secret',
    'reconcileTaggedServices=true',
  ];
  const parameterArn = (name: string) => `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/vpce-gatekeeper/test/${name}`;
  let template: Template;

  beforeAll(async () => {
    template = await readTemplate(await packageStack(SERVICE_IDS.join(','), SLACK_PARAMS));
  }, PACKAGE_TIMEOUT_MS);

  const variablesOf = (logicalId: string) => (resource(template, logicalId).Properties.Environment as { Variables: Record<string, unknown> }).Variables;

  it('subscribes the notifier to the decisions topic, filtered to the events a message shows and reminders', () => {
    const subscriptions = resourcesOfType(template, 'AWS::SNS::Subscription').map(([, s]) => s.Properties);
    const permissions = resourcesOfType(template, 'AWS::Lambda::Permission').map(([, p]) => p.Properties);

    expect(subscriptions).toContainEqual({
      TopicArn: { Ref: 'DecisionsTopic' },
      Protocol: 'lambda',
      Endpoint: { 'Fn::GetAtt': ['SlackNotifierLambdaFunction', 'Arn'] },
      FilterPolicyScope: 'MessageAttributes',
      FilterPolicy: { eventType: [...SLACK_EVENT_TYPES] },
    });
    expect(permissions).toContainEqual(
      expect.objectContaining({ FunctionName: { 'Fn::GetAtt': ['SlackNotifierLambdaFunction', 'Arn'] }, Principal: 'sns.amazonaws.com', SourceArn: { Ref: 'DecisionsTopic' } }),
    );
  });

  it('routes POST /chat/slack/interactions to its own function without an authorizer, every other API route staying behind IAM', () => {
    const routes = resourcesOfType(template, 'AWS::ApiGatewayV2::Route').map(([, route]) => route.Properties);
    const slack = routes.filter((route) => route.RouteKey === 'POST /chat/slack/interactions');
    const integration = resource(template, 'HttpApiIntegrationSlackInteractions').Properties;

    expect(slack).toHaveLength(1);
    expect(slack[0]?.AuthorizationType ?? 'NONE').toBe('NONE');
    expect(integration.IntegrationUri).toEqual({ 'Fn::GetAtt': ['SlackInteractionsLambdaFunction', 'Arn'] });
    const [, authorized] = partitionConsole(routes.filter((route) => route.RouteKey !== 'POST /chat/slack/interactions'));
    for (const route of authorized) expect(route).toMatchObject({ AuthorizationType: 'AWS_IAM' });
  });

  it('gives the functions the parameter names and the approvers, never a secret', () => {
    for (const logicalId of ['SlackNotifierLambdaFunction', 'SlackInteractionsLambdaFunction']) {
      expect(variablesOf(logicalId)).toMatchObject({
        SLACK_CHANNEL: 'C0123456789',
        SLACK_APPROVERS: 'U0123ABCD,S0456EFGH',
        SLACK_BOT_TOKEN_PARAMETER: '/vpce-gatekeeper/test/slack-bot-token',
        SLACK_SIGNING_SECRET_PARAMETER: '/vpce-gatekeeper/test/slack-signing-secret',
      });
    }
    expect(JSON.stringify(template)).not.toMatch(/xox[abp]-/);
    expect(Number(variablesOf('SlackInteractionsLambdaFunction').DECISION_LEASE_SECONDS)).toBeGreaterThan(
      resource(template, 'SlackInteractionsLambdaFunction').Properties.Timeout as number,
    );
  });

  it('lets each Slack function read only its own secrets, and their key only through SSM for those parameters', () => {
    const secretsOf = (roleId: string) => {
      const statements = roleStatements(template, roleId);
      const read = statements.filter((statement) => asArray(statement.Action).some((action) => action.startsWith('ssm:')));
      const decrypt = statements.filter((statement) => asArray(statement.Action).includes('kms:Decrypt'));
      return { read, decrypt };
    };
    const notifier = secretsOf('SlackNotifierRole');
    const interactions = secretsOf('SlackInteractionsRole');

    expect(notifier.read).toEqual([expect.objectContaining({ Action: 'ssm:GetParameter', Resource: [{ 'Fn::Sub': parameterArn('slack-bot-token') }] })]);
    expect(interactions.read).toEqual([
      expect.objectContaining({ Action: 'ssm:GetParameter', Resource: [{ 'Fn::Sub': parameterArn('slack-signing-secret') }, { 'Fn::Sub': parameterArn('slack-bot-token') }] }),
    ]);
    for (const [{ decrypt, read }] of [[notifier], [interactions]] as const) {
      expect(decrypt).toEqual([
        expect.objectContaining({
          Resource: '*',
          Condition: {
            StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' } },
            'ForAnyValue:StringEquals': { 'kms:EncryptionContext:PARAMETER_ARN': read[0]?.Resource },
          },
        }),
      ]);
    }
    // No other function reads a parameter or decrypts.
    expect(statementsAllowing(template, 'ssm:GetParameter')).toHaveLength(2);
    expect(statementsAllowing(template, 'kms:Decrypt')).toHaveLength(2);
  });

  it("lets the notifier touch only the Slack messages' items and read connections, and nothing in EC2 or SNS", () => {
    const statements = roleStatements(template, 'SlackNotifierRole');
    const actions = statements.flatMap((statement) => asArray(statement.Action));
    const leadingKeys = (action: string) =>
      statements.filter((statement) => asArray(statement.Action).includes(action)).map((statement) => statement.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys']);

    expect(actions.filter((action) => !action.startsWith('logs:')).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem', 'kms:Decrypt', 'ssm:GetParameter']);
    // The prefixes are the keys lib/aws/table.ts builds.
    const messageKey = keys.slackMessage('vpce-svc-0123456789abcdef0', 'vpce-0123456789abcdef0').pk;
    const connectionKey = keys.connection('vpce-svc-0123456789abcdef0', 'vpce-0123456789abcdef0').pk;
    expect(leadingKeys('dynamodb:PutItem')).toEqual([[`${SLACK_MESSAGE_KEY_PREFIX}*`]]);
    expect(leadingKeys('dynamodb:GetItem')).toEqual([[`${CONNECTION_KEY_PREFIX}*`, `${SLACK_MESSAGE_KEY_PREFIX}*`]]);
    expect(messageKey.startsWith(SLACK_MESSAGE_KEY_PREFIX) && connectionKey.startsWith(CONNECTION_KEY_PREFIX)).toBe(true);
  });

  it('lets the interactions function decide only on the services tagged managed, as the approvals API does', () => {
    const statements = roleStatements(template, 'SlackInteractionsRole');
    const decide = statements.find((statement) => asArray(statement.Action).includes('ec2:AcceptVpcEndpointConnections'));

    expect(asArray(decide?.Resource).map(arnText)).toEqual([SERVICES_OF_THE_ACCOUNT]);
    expect(decide?.Condition).toEqual(TAGGED_MANAGED);
    for (const roleId of ['SlackNotifierRole', 'SlackInteractionsRole']) expect(resource(template, roleId).Properties.Path).toBe('/vpce-gatekeeper/test/');
    // What the approvals API may do to decide, the interactions function may too: the same entry point.
    const actionsOf = (roleId: string) => new Set(roleStatements(template, roleId).flatMap((statement) => asArray(statement.Action)));
    const approvals = actionsOf('ApprovalsApiRole');
    const slack = actionsOf('SlackInteractionsRole');
    for (const action of ['ec2:AcceptVpcEndpointConnections', 'ec2:DescribeVpcEndpointConnections', 'dynamodb:PutItem', 'sns:Publish', 'organizations:DescribeAccount']) {
      expect(approvals.has(action) && slack.has(action), action).toBe(true);
    }
  });

  it('retries a failed notifier event twice and alarms when it still fails', () => {
    const invokeConfig = resourcesOfType(template, 'AWS::Lambda::EventInvokeConfig').find(([, c]) => (c.Properties.FunctionName as { Ref?: string }).Ref === 'SlackNotifierLambdaFunction');

    expect(invokeConfig?.[1].Properties.MaximumRetryAttempts).toBe(2);
    expect(resource(template, 'SlackNotifierErrorsAlarm').Properties).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'SlackNotifierLambdaFunction' } }],
      AlarmActions: [{ Ref: 'AlarmsTopic' }],
    });
  });

  it(
    'refuses to package half a Slack configuration, or an approver that is not a Slack id, naming the parameter',
    async () => {
      await expect(packageStack(SERVICE_IDS[0], ['slackChannel=C0123456789'])).rejects.toThrow(/"slackChannel", "slackBotTokenParameter" and "slackSigningSecretParameter" go together/);
      await expect(packageStack(SERVICE_IDS[0], [...SLACK_PARAMS.slice(0, 1), ...SLACK_PARAMS.slice(2), 'slackApprovers=alice@example.com'])).rejects.toThrow(
        /"slackApprovers" holds entries that are not Slack user ids .*: alice@example.com/,
      );
    },
    PACKAGE_TIMEOUT_MS,
  );
});
