'use strict';

/**
 * Approvals in Slack (docs/slack.md): two functions, their roles, and nothing at all
 * when the stage does not configure Slack.
 *
 * - slackNotifier, subscribed to the decisions topic (filter policy on eventType), posts
 *   each approval-needed request to the channel and updates its message on every later
 *   event about it.
 * - slackInteractions, behind the public route POST /chat/slack/interactions (no IAM or
 *   JWT authorizer: Slack's request signature is the authentication), opens the reason
 *   modal and decides through the approvers' entry point.
 *
 * From the stage parameters: slackChannel, slackBotTokenParameter and
 * slackSigningSecretParameter (the names of SSM SecureString parameters; the secrets
 * never enter the template or an environment variable) turn it on together;
 * slackApprovers says who may decide. serverless.yml pulls these in through
 * `${file(./stack/slack.cjs):<export>, null}`; osls calls each export with
 * `{ resolveVariable }` and drops a function that resolves to null.
 */

const { managedServiceIds } = require('./endpoint-services.cjs');
const { readOrganization } = require('./organizations.cjs');

/** The events the notifier handles: SLACK_EVENT_TYPES in lib/slack/message-card.ts (template test). */
const SLACK_EVENT_TYPES = ['approval-needed', 'accepted', 'rejected', 'action-failed', 'approval-reminder'];
/** The partition key prefixes of the items the notifier reads and writes (lib/aws/table.ts, template test). */
const CONNECTION_KEY_PREFIX = 'CONN#';
const SLACK_MESSAGE_KEY_PREFIX = 'SLACKMSG#';

const CHANNEL_ID = /^[CGD][A-Z0-9]{2,}$/;
const APPROVER = /^[UWS][A-Z0-9]{2,}$/;
const PARAMETER_NAME = /^(\/[\w.-]+)+$|^[\w.-]+$/;

async function param(resolveVariable, name) {
  return String((await resolveVariable(`param:${name}`)) ?? '').trim();
}

/** The Slack settings, or undefined when Slack is off; throws naming the parameter that is wrong. */
async function slackSettings({ resolveVariable }) {
  const channel = await param(resolveVariable, 'slackChannel');
  const botTokenParameter = await param(resolveVariable, 'slackBotTokenParameter');
  const signingSecretParameter = await param(resolveVariable, 'slackSigningSecretParameter');
  const approvers = (await param(resolveVariable, 'slackApprovers'))
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  const set = [channel, botTokenParameter, signingSecretParameter].filter(Boolean).length;
  if (set === 0) {
    if (approvers.length) throw new Error('param "slackApprovers" is set but Slack is off: set slackChannel, slackBotTokenParameter and slackSigningSecretParameter too (docs/slack.md)');
    return undefined;
  }
  if (set < 3) {
    throw new Error('params "slackChannel", "slackBotTokenParameter" and "slackSigningSecretParameter" go together: set all three for Slack approvals, or none (docs/slack.md)');
  }
  if (!CHANNEL_ID.test(channel)) throw new Error(`param "slackChannel" must be a channel id such as C0123456789 (in Slack: the channel's details), not ${channel}`);
  for (const [name, value] of [['slackBotTokenParameter', botTokenParameter], ['slackSigningSecretParameter', signingSecretParameter]]) {
    if (!PARAMETER_NAME.test(value)) throw new Error(`param "${name}" must be the name of an SSM parameter, such as /vpce-gatekeeper/prod/slack-bot-token, not ${value}`);
  }
  const invalid = approvers.filter((id) => !APPROVER.test(id));
  if (invalid.length) throw new Error(`param "slackApprovers" holds entries that are not Slack user ids (U…, W…) or user group ids (S…): ${invalid.join(', ')}`);
  return { channel, botTokenParameter, signingSecretParameter, approvers };
}

async function names({ resolveVariable }) {
  const service = await resolveVariable('self:service');
  const stage = await resolveVariable('sls:stage');
  return { prefix: `${service}-${stage}`, stage };
}

/** `/vpce-gatekeeper/prod/x` or `x` -> the parameter's ARN (SSM writes a path's leading / once). */
function parameterArn(name) {
  return { 'Fn::Sub': `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter/${name.replace(/^\//, '')}` };
}

function slackEnvironment(settings) {
  return {
    SLACK_CHANNEL: settings.channel,
    SLACK_APPROVERS: settings.approvers.join(','),
    SLACK_BOT_TOKEN_PARAMETER: settings.botTokenParameter,
    SLACK_SIGNING_SECRET_PARAMETER: settings.signingSecretParameter,
  };
}

/** The notifier function, or null when Slack is off. */
async function notifierFunction(context) {
  const settings = await slackSettings(context);
  if (!settings) return null;
  const { prefix } = await names(context);
  return {
    handler: 'handlers/slack-notifier.handler',
    name: `${prefix}-slack-notifier`,
    description: 'Posts approval-needed requests to Slack and updates each message on every decision',
    role: 'SlackNotifierRole',
    timeout: 30,
    // SNS invokes it asynchronously: a failed event is retried twice, a minute and two apart.
    maximumRetryAttempts: 2,
    environment: { TABLE_NAME: { Ref: 'StateTable' }, ...slackEnvironment(settings) },
    events: [
      {
        sns: {
          arn: { Ref: 'DecisionsTopic' },
          topicName: `${prefix}-decisions`,
          filterPolicyScope: 'MessageAttributes',
          filterPolicy: { eventType: SLACK_EVENT_TYPES },
        },
      },
    ],
  };
}

/** The interactions function behind its public route, or null when Slack is off. */
async function interactionsFunction(context) {
  const settings = await slackSettings(context);
  if (!settings) return null;
  const { prefix } = await names(context);
  return {
    handler: 'handlers/slack-interactions.handler',
    name: `${prefix}-slack-interactions`,
    description: "Slack's interactions: the reason modal, and approvers' decisions from Slack",
    role: 'SlackInteractionsRole',
    // Slack waits 3 s for an answer; API Gateway gives up after 30.
    timeout: 29,
    environment: {
      TABLE_NAME: { Ref: 'StateTable' },
      OUTBOUND_TOPIC_ARN: { Ref: 'DecisionsTopic' },
      MANAGED_SERVICE_IDS: await managedServiceIds(context),
      // Longer than the timeout: a claim is never taken over from a request still running.
      DECISION_LEASE_SECONDS: '45',
      RECONCILE_TAGGED_SERVICES: await param(context.resolveVariable, 'reconcileTaggedServices'),
      ...slackEnvironment(settings),
    },
    // No authorizer: Slack signs its requests with the app's signing secret, checked by the function.
    events: [{ httpApi: { method: 'POST', path: '/chat/slack/interactions' } }],
  };
}

function lambdaRole(stage, description, policyName, statements) {
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      // The stage's path, as every function role has (serverless.yml): the spokes' roles trust the stage by it.
      Path: `/vpce-gatekeeper/${stage}/`,
      Description: description,
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      },
      Policies: [{ PolicyName: policyName, PolicyDocument: { Version: '2012-10-17', Statement: statements } }],
    },
  };
}

/** Reads the SecureStrings: GetParameter on them only, and their KMS key only through SSM, only for them. */
function readSecrets(sid, parameterNames) {
  const arns = parameterNames.map(parameterArn);
  return [
    { Sid: sid, Effect: 'Allow', Action: 'ssm:GetParameter', Resource: arns },
    {
      // The key is whichever encrypts the parameters (aws/ssm or a customer managed key), so '*',
      // narrowed to decryption that SSM asks for on behalf of these parameters.
      Sid: `${sid}Decrypt`,
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: '*',
      Condition: {
        StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'ssm.${AWS::Region}.amazonaws.com' } },
        'ForAnyValue:StringEquals': { 'kms:EncryptionContext:PARAMETER_ARN': arns },
      },
    },
  ];
}

function writeOwnLogs(functionName) {
  return {
    Sid: 'WriteOwnLogs',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${functionName}:*` },
  };
}

/** The Slack functions' roles and alarm; nothing when Slack is off. */
async function resources(context) {
  const settings = await slackSettings(context);
  if (!settings) return { Resources: {} };
  const { prefix, stage } = await names(context);
  const table = { 'Fn::GetAtt': ['StateTable', 'Arn'] };
  const Resources = {
    SlackNotifierRole: lambdaRole(stage, `Runs ${prefix}-slack-notifier`, 'slack-notifier', [
      ...readSecrets('ReadSlackBotToken', [settings.botTokenParameter]),
      // Reads a held connection's record before announcing it (was it decided meanwhile?), and its message's item.
      {
        Sid: 'ReadConnectionsAndMessages',
        Effect: 'Allow',
        Action: 'dynamodb:GetItem',
        Resource: table,
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${CONNECTION_KEY_PREFIX}*`, `${SLACK_MESSAGE_KEY_PREFIX}*`] } },
      },
      // Writes only the items of the Slack messages (which message shows which connection).
      {
        Sid: 'WriteMessages',
        Effect: 'Allow',
        Action: 'dynamodb:PutItem',
        Resource: table,
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${SLACK_MESSAGE_KEY_PREFIX}*`] } },
      },
      writeOwnLogs(`${prefix}-slack-notifier`),
    ]),
    SlackInteractionsRole: lambdaRole(stage, `Runs ${prefix}-slack-interactions`, 'slack-interactions', [
      ...readSecrets('ReadSlackSecrets', [settings.signingSecretParameter, settings.botTokenParameter]),
      // An approver's accept or reject from Slack, only on the endpoint services tagged managed
      // (as the approvals API's role: the policy does not grow with the services).
      {
        Sid: 'DecideOnManagedServices',
        Effect: 'Allow',
        Action: ['ec2:AcceptVpcEndpointConnections', 'ec2:RejectVpcEndpointConnections'],
        Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-endpoint-service/*' },
        Condition: { StringEquals: { 'aws:ResourceTag/vpce-gatekeeper:managed': 'true' } },
      },
      // EC2's truth before acting, and the managed services; Describe* allows nothing narrower than '*'.
      {
        Sid: 'ReadEndpointConnections',
        Effect: 'Allow',
        Action: ['ec2:DescribeVpcEndpointConnections', 'ec2:DescribeVpcEndpointServiceConfigurations'],
        Resource: '*',
      },
      // As the approvals API: the spokes' connections, through the role stack/spoke.yml creates in each.
      {
        'Fn::If': [
          'HasSpokes',
          {
            Sid: 'AssumeSpokeRole',
            Effect: 'Allow',
            Action: 'sts:AssumeRole',
            Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:iam::*:role/${prefix}-spoke` },
          },
          { Ref: 'AWS::NoValue' },
        ],
      },
      // The approvers' entry point, as the approvals API has it (claims, records, admissions, the
      // organization's memberships it caches), plus the Slack items: messages, and the signatures
      // seen (replays).
      {
        Sid: 'ReadWriteStateTable',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
        Resource: table,
      },
      // The engine reads the organization as the approvals API's decisions do (stack/organizations.cjs).
      await readOrganization(context),
      // On a stage not yet migrated (legacyConnections), its writes move connections from their old keys.
      {
        'Fn::If': ['LegacyConnections', { Sid: 'MoveLegacyConnections', Effect: 'Allow', Action: 'dynamodb:DeleteItem', Resource: table }, { Ref: 'AWS::NoValue' }],
      },
      // Announces the decisions it makes.
      { Sid: 'PublishDecisions', Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: 'DecisionsTopic' } },
      writeOwnLogs(`${prefix}-slack-interactions`),
    ]),
    // The notifier failed an event three times (Slack or the table unreachable): a message is stale.
    SlackNotifierErrorsAlarm: {
      Type: 'AWS::CloudWatch::Alarm',
      Properties: {
        AlarmName: `${prefix}-slack-notifier-errors`,
        AlarmDescription: 'Events could not be shown in Slack (docs/slack.md)',
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: 'SlackNotifierLambdaFunction' } }],
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: 'AlarmsTopic' }],
        OKActions: [{ Ref: 'AlarmsTopic' }],
      },
    },
  };
  return { Resources };
}

module.exports = { notifierFunction, interactionsFunction, resources, SLACK_EVENT_TYPES, CONNECTION_KEY_PREFIX, SLACK_MESSAGE_KEY_PREFIX };
