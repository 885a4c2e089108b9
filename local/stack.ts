import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { CallLog } from './aws/call-log';
import { type LocalDynamo, startDynamo } from './aws/dynamo';
import { PrivateLinkSimulator } from './aws/ec2-simulator';
import { Faults, type FaultSettings } from './aws/faults';
import { closeServer, listen } from './listen';
import { describeError, logLocal } from './log';
import { loadPolicyFile, type PutPolicy, readPolicyFile } from './control/policies';
import { createRequestListener, EC2_PATH, ORGANIZATIONS_PATH, SNS_PATH, SQS_PATH, SSM_PATH, STS_PATH } from './server';
import { NOSNIFF_HEADER } from './http-io';
import type { ControlPlane } from './control/routes';
import { createOrganizationPlane, LOCAL_ORGANIZATIONS_EXTERNAL_ID, LOCAL_ORGANIZATIONS_ROLE, LOCAL_ORGANIZATIONS_ROLE_ARN } from './aws/organization-plane';
import { type DirectHandler, ScheduledFunction } from './lambda/scheduled-function';
import { LocalQueue, LocalSqs } from './aws/sqs';
import { LOCAL_APPROVER_ARN, LocalApiGateway, type LocalApiAuth } from './lambda/api-gateway';
import { LOCAL_APPROVER_GROUP, LOCAL_CLI_CLIENT_ID, LOCAL_CONSOLE_CLIENT_ID, LocalOidcIssuer } from './aws/oidc';
import { LocalJwtAuthorizer } from './lambda/jwt-authorizer';
import { InboundSns, type InboundTopic } from './aws/sns-inbound';
import { LocalSts } from './aws/sts-api';
import { spokeTopicArn, type Spoke } from '../lib/domain/spokes';
import {
  LOCAL_LOCATION,
  LOCAL_SPOKE_EXTERNAL_ID,
  LOCAL_SPOKE_ROLE_NAME,
  LOCAL_SPOKE_TOPIC_NAME,
  sameLocation,
  spokeRoleArn,
} from './aws/locations';
import { OutboundSns } from './aws/sns-outbound';
import { EventSourceMapping, type SqsLambdaHandler } from './lambda/event-source-mapping';
import { DEPLOYED_QUEUE_DEFAULTS } from './lambda/deployed-defaults';
import { type FunctionWorkers, notificationFunctionInWorkers } from './lambda/function-workers';
import { LAMBDA_CONCURRENCY_ENV } from './lambda/lambda-runtime';
import { LocalSsm } from './aws/ssm';
import { slackEnvironment, startSlack, storeSlackSecrets } from './slack/wiring';
import type { SlackPlane } from './control/slack-routes';

export const LOCAL_TABLE_NAME = 'vpce-gatekeeper-local';
/** The hub's own inbound topic: its own account and Region's connection notifications. */
export const INBOUND_TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-local-notifications';
export const OUTBOUND_TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-local-decisions';
const FUNCTION_NAME = 'vpce-gatekeeper-local-onConnectionNotification';
const APPROVALS_FUNCTION_NAME = 'vpce-gatekeeper-local-httpApi';
const RECONCILE_FUNCTION_NAME = 'vpce-gatekeeper-local-reconcile';
const NOTIFICATION_QUEUE_NAME = 'vpce-gatekeeper-local-notifications';
const DEAD_LETTER_QUEUE_NAME = 'vpce-gatekeeper-local-notifications-dlq';
/** The deployed reconciler's timeout (serverless.yml). */
const RECONCILE_TIMEOUT_MS = 240_000;
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
/** The functions' credentials, as the AWS services that check signatures (SSM) know them. */
const LOCAL_FUNCTIONS_PRINCIPAL = {
  ...CREDENTIALS,
  userArn: 'arn:aws:sts::000000000000:assumed-role/vpce-gatekeeper-local/functions',
  userId: 'AROALOCALFUNCTIONS:functions',
  accountId: '000000000000',
};
// How long a reset waits for handler invocations already running.
const RESET_SETTLE_MS = 10_000;
const CLOSE_SETTLE_MS = 2_000;

export interface LocalStackOptions {
  /** Port on 127.0.0.1; 0 picks an ephemeral port. Default 3000. */
  port?: number;
  /** A policy file (JSON or YAML) loaded at start and on every reset. */
  policyFile?: string;
  /** How long an accepted connection stays pending before it is available. Default 1000. */
  acceptDelayMs?: number;
  /**
   * The notification queue's visibility timeout: how long a message that failed
   * waits before it is retried. Default: the deployed 180 s.
   */
  visibilityTimeoutMs?: number;
  /** Receives after which a message moves to the dead-letter queue. Default: the deployed 5. */
  maxReceiveCount?: number;
  /** The event source mapping's batch size. Default: the deployed 1,000. */
  batchSize?: number;
  /** The event source mapping's batching window. Default: the deployed 1 s. */
  batchingWindowMs?: number;
  /** The event source mapping's maximum concurrency. Default: the deployed 5. */
  maximumConcurrency?: number;
  /** Seconds between scheduled reconciler runs; 0 turns the schedule off. Default 60. */
  reconcileIntervalSeconds?: number;
  /** After which every local function invocation has failed. Default: each function's deployed timeout. */
  functionTimeoutMs?: number;
  /**
   * How the approvals API authenticates: 'iam' (SigV4, the default) or 'jwt' (a JWT
   * authorizer trusting the local OpenID Connect issuer at /local/oidc).
   */
  auth?: 'iam' | 'jwt';
  /**
   * The other accounts and Regions the stack decides for (its own account and us-east-1 always
   * are one): each gets a topic subscribed to the notification queue, and a role in its account.
   */
  spokes?: Spoke[];
  /** The Slack simulator and the Slack functions (approvals in Slack). Default true. */
  slack?: boolean;
  /**
   * Runs the notification function's invocations in this many worker threads, one execution
   * environment each, as Lambda's sandboxes are (local/lambda/function-workers.ts). Default: none,
   * every function on the stack's own thread.
   */
  functionWorkers?: number;
}

export interface LocalStack {
  /** e.g. http://127.0.0.1:3000 */
  baseUrl: string;
  /** The policies loaded from the policy file ('default' or service ids); empty without one. */
  policyIds: string[];
  /** The local OpenID Connect issuer whose tokens the API takes, with --auth jwt. */
  issuer?: string;
  close(): Promise<void>;
}

let started = false;

/**
 * Starts the whole local stack in this process: dynalite, the PrivateLink and SNS
 * simulators, and the handler wired to them through the standard AWS environment
 * variables. Once per process: the handler reads its configuration when imported.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (started) throw new Error('the local stack can be started only once per process');
  started = true;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  // Every function runs in this one process, concurrently: a multi-concurrency execution
  // environment. Set before the first AWS SDK call, which settles how invocations are kept apart.
  Object.assign(process.env, LAMBDA_CONCURRENCY_ENV);
  const policyFile = options.policyFile === undefined ? undefined : resolve(options.policyFile);
  if (policyFile) await readPolicyFile(policyFile); // a bad file stops us before anything starts
  buildConsole(); // the approvals API serves it at /console, as the deployed function does

  const dynamo = await startDynamo(LOCAL_TABLE_NAME, CREDENTIALS);
  const faults = new Faults();
  await dynamo.setPartitionLimits(faults.current().dynamoPartitionLimits);
  const server = createServer();
  let workers: FunctionWorkers | undefined;
  try {
    await listen(server, options.port ?? 3000);
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    pointAwsSdkAtLocalStack(baseUrl, dynamo.endpoint);
    if (options.slack !== false) Object.assign(process.env, slackEnvironment(baseUrl));
    const oidc = options.auth === 'jwt' ? await LocalOidcIssuer.start(baseUrl) : undefined;
    if (oidc) useJwtAuthorization(oidc);
    useSpokes(otherSpokes(options.spokes));
    const { handler, putPolicy } = await importHandlerAndPolicyStore();
    const api = await importApprovalsApi(
      oidc ? { kind: 'jwt', authorizer: new LocalJwtAuthorizer({ issuer: oidc.issuer, audiences: oidc.clientIds }) } : { kind: 'iam' },
    );
    const direct = await importDirectFunctions();
    const outbound = new OutboundSns(new Set([OUTBOUND_TOPIC_ARN]));
    const slack = options.slack === false ? undefined : await startSlack({ baseUrl, outbound, topicArn: OUTBOUND_TOPIC_ARN, functionTimeoutMs: options.functionTimeoutMs });
    let policyIds: string[] = [];
    const loadPolicies = async () => {
      if (!policyFile) return;
      policyIds = await loadPolicyFile(policyFile, putPolicy);
      logLocal('info', 'policies loaded', { policyFile, policyIds });
    };
    workers = options.functionWorkers === undefined ? undefined : await notificationFunctionInWorkers(options.functionWorkers);
    const plane = wire({ baseUrl, dynamo, faults, handler: workers?.handler ?? handler, direct, loadPolicies, options, outbound, slack: slack?.plane });
    const listener = createRequestListener(plane, slack ? [api, slack.api] : [api]);
    server.on('request', (request, response) => {
      if (!oidc || !LocalOidcIssuer.handles(new URL(request.url ?? '/', baseUrl).pathname)) return listener(request, response);
      response.setHeader(NOSNIFF_HEADER, 'nosniff');
      oidc.serve(request, response).catch((error: unknown) => {
        logLocal('error', 'local OIDC issuer failed', describeError(error));
        response.destroy();
      });
    });
    await loadPolicies();
    plane.reconciler.start();
    plane.notificationSource.start();
    return {
      baseUrl,
      policyIds,
      issuer: oidc?.issuer,
      close: async () => {
        plane.reconciler.stop();
        plane.notificationSource.stop();
        await plane.reconciler.settle(CLOSE_SETTLE_MS);
        await plane.slack?.notifier.reset(CLOSE_SETTLE_MS);
        plane.simulator.reset();
        plane.inbound.reset();
        await plane.notificationSource.reset(CLOSE_SETTLE_MS);
        plane.sqs.clear();
        await workers?.close();
        await closeServer(server);
        await dynamo.close();
      },
    };
  } catch (error) {
    await workers?.close();
    if (server.listening) await closeServer(server);
    await dynamo.close();
    throw error;
  }
}

/** Builds console/dist from console/src (console/build.cjs), as packaging the stack does. */
function buildConsole(): void {
  const { buildConsole: build } = createRequire(import.meta.url)('../console/build.cjs') as { buildConsole: () => unknown };
  build();
}

/** Builds the simulators and connects them: EC2 state changes go to the topic, the queue, the handler. */
function wire(parts: {
  baseUrl: string;
  dynamo: LocalDynamo;
  faults: Faults;
  handler: SqsLambdaHandler;
  direct: { reconcile: DirectHandler };
  loadPolicies: () => Promise<void>;
  options: LocalStackOptions;
  outbound: OutboundSns;
  slack?: SlackPlane;
}): ControlPlane {
  const { baseUrl, dynamo, faults, options } = parts;
  const defaults = DEPLOYED_QUEUE_DEFAULTS;
  const sqs = new LocalSqs();
  const sqsEndpoint = `${baseUrl}${SQS_PATH}`;
  const deadLetterQueue = sqs.add(
    new LocalQueue({ name: DEAD_LETTER_QUEUE_NAME, endpoint: sqsEndpoint, visibilityTimeoutMs: defaults.visibilityTimeoutSeconds * 1000 }),
  );
  const notificationQueue = sqs.add(
    new LocalQueue({
      name: NOTIFICATION_QUEUE_NAME,
      endpoint: sqsEndpoint,
      visibilityTimeoutMs: options.visibilityTimeoutMs ?? defaults.visibilityTimeoutSeconds * 1000,
      redrivePolicy: { deadLetterQueue, maxReceiveCount: options.maxReceiveCount ?? defaults.maxReceiveCount },
    }),
  );
  const notificationSource = new EventSourceMapping({
    queue: notificationQueue,
    functionName: FUNCTION_NAME,
    handler: parts.handler,
    batchSize: options.batchSize ?? defaults.batchSize,
    maximumBatchingWindowMs: options.batchingWindowMs ?? defaults.batchingWindowSeconds * 1000,
    maximumConcurrency: options.maximumConcurrency ?? defaults.maximumConcurrency,
    functionTimeoutMs: options.functionTimeoutMs,
  });
  const reconciler = new ScheduledFunction({
    functionName: RECONCILE_FUNCTION_NAME,
    handler: parts.direct.reconcile,
    timeoutMs: options.functionTimeoutMs ?? RECONCILE_TIMEOUT_MS,
    intervalSeconds: options.reconcileIntervalSeconds ?? 60,
  });
  const calls = new CallLog();
  const { outbound, slack } = parts;
  const ssm = new LocalSsm([LOCAL_FUNCTIONS_PRINCIPAL]);
  storeSlackSecrets(ssm);
  const spokes = otherSpokes(options.spokes);
  const topics: InboundTopic[] = [
    { ...LOCAL_LOCATION, topicArn: INBOUND_TOPIC_ARN },
    ...spokes.map((spoke) => ({ ...spoke, topicArn: spokeTopicArn(spoke, LOCAL_SPOKE_TOPIC_NAME) })),
  ];
  const inbound = new InboundSns({ topics, queue: notificationQueue, faults, endpoint: `${baseUrl}${SNS_PATH}` });
  const simulator = new PrivateLinkSimulator({
    acceptDelayMs: options.acceptDelayMs ?? 1000,
    notify: (topicArn, notification) => inbound.publish(JSON.stringify(notification), topicArn),
  });
  // One spoke role per spoke account (IAM is global), refused where spokeUnavailable names the
  // account and the Region STS is called in.
  const spokeRoles = [...new Set(spokes.map((spoke) => spoke.accountId))].map((accountId) => ({
    roleArn: spokeRoleArn(accountId),
    externalId: LOCAL_SPOKE_EXTERNAL_ID,
  }));
  const sts = new LocalSts([LOCAL_ORGANIZATIONS_ROLE, ...spokeRoles], {
    refuses: ({ accountId, roleArn }, region) => roleArn.endsWith(`/${LOCAL_SPOKE_ROLE_NAME}`) && faults.spokeUnavailable({ accountId, region }),
  });
  const organization = createOrganizationPlane(faults, sts);
  // The local DynamoDB runs in a worker of its own: its switch is told there, and answered, before the faults are.
  const setFaults = async (settings: FaultSettings) => {
    const inForce = faults.set(settings);
    dynamo.setUnavailable(inForce.dynamoUnavailable);
    await dynamo.setPartitionLimits(inForce.dynamoPartitionLimits);
    return inForce;
  };
  const reset = oneAtATime(async () => {
    faults.clear();
    dynamo.setUnavailable(faults.dynamoUnavailable());
    await dynamo.setPartitionLimits(faults.current().dynamoPartitionLimits);
    organization.reset();
    // The functions' containers start cold: nothing remembered of an organization that is gone.
    (await import('../lib/aws/ports')).forgetContainerState();
    simulator.reset();
    inbound.reset();
    sqs.clear();
    await notificationSource.reset(RESET_SETTLE_MS);
    await reconciler.settle(RESET_SETTLE_MS);
    await slack?.notifier.reset(RESET_SETTLE_MS);
    slack?.workspace.reset();
    (await import('../lib/slack/approvers')).forgetGroupMembers();
    // Nor of a table migration: the table is new.
    (await import('../lib/aws/connection-store')).forgetMigrationProgress();
    sqs.clear(); // what an invocation still running at the reset handed back
    outbound.clear();
    calls.reset();
    await dynamo.resetTable();
    await parts.loadPolicies();
    inbound.requestConfirmations(); // the subscriptions still pending were asked in a queue emptied since
  });
  const info = {
    tableName: LOCAL_TABLE_NAME,
    dynamodbEndpoint: parts.dynamo.endpoint,
    ec2Endpoint: `${baseUrl}${EC2_PATH}`,
    snsEndpoint: `${baseUrl}${SNS_PATH}`,
    sqsEndpoint,
    inboundTopicArn: INBOUND_TOPIC_ARN,
    outboundTopicArn: OUTBOUND_TOPIC_ARN,
    notificationQueueUrl: notificationQueue.url,
    deadLetterQueueUrl: deadLetterQueue.url,
    deadLetterQueueArn: deadLetterQueue.arn,
    organizationsEndpoint: `${baseUrl}${ORGANIZATIONS_PATH}`,
    stsEndpoint: `${baseUrl}${STS_PATH}`,
    ssmEndpoint: `${baseUrl}${SSM_PATH}`,
  };
  return {
    simulator,
    inbound,
    outbound,
    faults,
    setFaults,
    calls,
    sts,
    info,
    reset,
    reconciler,
    sqs,
    notificationQueue,
    deadLetterQueue,
    notificationSource,
    dynamoUsage: () => dynamo.usage(),
    organization,
    ssm,
    slack,
  };
}

/** The spokes besides the stack's own account and Region. */
function otherSpokes(spokes: Spoke[] = []): Spoke[] {
  return spokes.filter((spoke) => !sameLocation(spoke, LOCAL_LOCATION));
}

/**
 * The spokes, as serverless.yml gives them to the functions: the stage's account, the stage
 * parameter `spokes` (the hub's own account and Region left implicit), and the names
 * stack/spoke.yml gives their topic and role, with the external id the role asks for.
 */
function useSpokes(spokes: Spoke[]): void {
  Object.assign(process.env, {
    HUB_ACCOUNT_ID: LOCAL_LOCATION.accountId,
    SPOKES: spokes.map(({ accountId, region }) => `${accountId}:${region}`).join(','),
    SPOKE_TOPIC_NAME: LOCAL_SPOKE_TOPIC_NAME,
    SPOKE_ROLE_NAME: LOCAL_SPOKE_ROLE_NAME,
    SPOKE_EXTERNAL_ID: LOCAL_SPOKE_EXTERNAL_ID,
  });
}

/** Runs `task` after every earlier run has settled, so that two resets never interleave. */
function oneAtATime(task: () => Promise<void>): () => Promise<void> {
  let previous: Promise<unknown> = Promise.resolve();
  return () => {
    const run = previous.then(task, task);
    previous = run.catch(() => undefined);
    return run;
  };
}

/**
 * The handler and the policy store reach the simulators only through the standard
 * variables, exactly as they would reach AWS.
 */
function pointAwsSdkAtLocalStack(baseUrl: string, dynamoEndpoint: string): void {
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS']) {
    delete process.env[name];
  }
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_EC2: `${baseUrl}${EC2_PATH}`,
    AWS_ENDPOINT_URL_SNS: `${baseUrl}${SNS_PATH}`,
    // dynalite's endpoint, whose connections dynamoUnavailable cuts (local/aws/dynamo-gate.ts).
    AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: `${baseUrl}${SQS_PATH}`,
    AWS_ENDPOINT_URL_ORGANIZATIONS: `${baseUrl}${ORGANIZATIONS_PATH}`,
    AWS_ENDPOINT_URL_STS: `${baseUrl}${STS_PATH}`,
    AWS_ENDPOINT_URL_SSM: `${baseUrl}${SSM_PATH}`,
    // The functions read the organization through the read-only role, as deployed.
    ORGANIZATIONS_ROLE_ARN: LOCAL_ORGANIZATIONS_ROLE_ARN,
    ORGANIZATIONS_EXTERNAL_ID: LOCAL_ORGANIZATIONS_EXTERNAL_ID,
    POWERTOOLS_METRICS_NAMESPACE: 'vpce-gatekeeper-local',
    TABLE_NAME: LOCAL_TABLE_NAME,
    OUTBOUND_TOPIC_ARN,
    INBOUND_TOPIC_ARN,
    // Which services this stage manages, as the deployed stage's serviceIds parameter says: every one by default.
    MANAGED_SERVICE_IDS: process.env.MANAGED_SERVICE_IDS ?? '',
    APPROVER_PRINCIPALS: LOCAL_APPROVER_ARN,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
}

/**
 * The JWT mode's settings, as serverless.yml gives them to the approvals API when
 * jwtIssuerUrl is set: the issuer the console and the CLI sign in with, their
 * client ids, and the group whose members approve.
 */
function useJwtAuthorization(oidc: LocalOidcIssuer): void {
  Object.assign(process.env, {
    JWT_ISSUER_URL: oidc.issuer,
    CONSOLE_CLIENT_ID: LOCAL_CONSOLE_CLIENT_ID,
    CLI_CLIENT_ID: LOCAL_CLI_CLIENT_ID,
    APPROVER_GROUPS: LOCAL_APPROVER_GROUP,
    JWT_GROUPS_CLAIM: 'groups',
  });
}

/** Imported only after the environment is set: both read their configuration at cold start. */
async function importHandlerAndPolicyStore(): Promise<{ handler: SqsLambdaHandler; putPolicy: PutPolicy }> {
  const handlerModule = await import('../handlers/on-connection-notification');
  const policyStore = await import('../lib/aws/policy-store');
  return { handler: handlerModule.handler, putPolicy: policyStore.putPolicy };
}

/** The approvals API handler behind a local API Gateway; imported, like the others, after the environment is set. */
async function importApprovalsApi(auth: LocalApiAuth): Promise<LocalApiGateway> {
  const { handler, routes } = await import('../handlers/http-api');
  return new LocalApiGateway({ routes, handler, functionName: APPROVALS_FUNCTION_NAME, auth });
}

/** The reconciler, which the stack invokes directly. */
async function importDirectFunctions(): Promise<{ reconcile: DirectHandler }> {
  const reconcile = await import('../handlers/reconcile');
  return { reconcile: reconcile.handler };
}
