/**
 * A harness for end-to-end tests: runs the real local stack (`npm start`) as a
 * child process on an ephemeral port and drives it through its HTTP contract.
 *
 * ```ts
 * const stack = await startLocalStack({ policy: { default: { allow: [{ account: '123456789012' }] } } });
 * const { serviceId } = await stack.createService();
 * const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: '123456789012' });
 * await stack.waitFor(async () => (await stack.listEndpoints(serviceId))[0]?.state === 'available');
 * await stack.stop();
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { keys } from '../../lib/aws/table';
import type { ConnectionRecord } from '../../lib/domain/connection';
import type { InboundMessage, InboundSubscription } from '../../local/aws/sns-inbound';
import type { MessageAttribute, PublishedMessage as OutboxMessage } from '../../local/aws/sns-outbound';
import type { QueuedMessage as DeadLetter } from '../../local/aws/sqs';
import type { RedriveSummary } from '../../local/aws/dlq-redrive';
import type { InvocationRecord } from '../../local/lambda/event-source-mapping';

// The wire shapes of the control routes, as the local stack defines them.
export type { DeadLetter, InboundMessage, InboundSubscription, InvocationRecord, MessageAttribute, OutboxMessage, RedriveSummary };

/** Where a service lives, as POST /local/services answers. */
export interface CreatedService {
  serviceId: string;
  accountId: string;
  region: string;
}

export interface ServiceOptions {
  acceptanceRequired?: boolean;
  serviceId?: string;
  tags?: Record<string, string>;
  /** The provider's account and the service's Region: the stack's own (000000000000, us-east-1) unless given. */
  accountId?: string;
  region?: string;
  /** false: no connection notification to its spoke's topic. */
  connectionNotification?: boolean;
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const READY_LINE = /ready at (http:\/\/127\.0\.0\.1:\d+)/;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export const INBOUND_TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-local-notifications';
export const OUTBOUND_TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-local-decisions';

export type EndpointState = 'pendingAcceptance' | 'pending' | 'available' | 'rejected' | 'deleted';

export interface LocalEndpoint {
  vpcEndpointId: string;
  ownerAccountId: string;
  region: string;
  state: EndpointState;
}


export interface CallCount {
  received: number;
  failed: number;
}

export interface Calls {
  byAction: Record<string, CallCount>;
  byEndpoint: Record<string, Record<string, CallCount>>;
  /** `account/region` (where the caller's credentials and signature say it called): its calls by action. */
  byAccountRegion: Record<string, { byAction: Record<string, CallCount> }>;
}

export interface Faults {
  ec2ThrottleRate?: number;
  duplicateDeliveries?: number;
  shuffleDeliveries?: boolean;
  /** Fraction of EC2 calls answered 500 InternalError or 503 Unavailable. */
  ec2ErrorRate?: number;
  /** Fraction of inbound notifications lost before delivery. */
  dropNotifications?: number;
  /** Fraction of Accept/Reject calls after which the calling invocation dies (EC2 acted, nothing recorded). */
  crashAfterEc2Call?: number;
  /** Every DynamoDB connection is cut while true. */
  dynamoUnavailable?: boolean;
  /** Every Organizations call fails with AccessDeniedException while true. */
  organizationsUnavailable?: boolean;
  /** EC2 calls naming one of these service or endpoint ids are answered 503 Unavailable. */
  ec2UnavailableFor?: string[];
  /** EC2's rate limits: false turns them off; buckets given replace the defaults (Describe* 100 + 20/s, mutating 50 + 5/s). */
  ec2RateLimits?: false | { mutating?: BucketLimits; nonMutating?: BucketLimits };
  /** Spokes (`account:region`) whose role cannot be assumed there, and whose sessions can do nothing in EC2 there. */
  spokeUnavailable?: string[];
  /** DynamoDB's per-partition limits (1,000 write and 3,000 read units a second per key, table and index): on unless false. */
  dynamoPartitionLimits?: boolean;
}

export interface BucketLimits {
  capacity: number;
  refillPerSecond: number;
}

/** The faults in force, as GET and POST /local/faults answer. */
export type FaultsInForce = Required<Omit<Faults, 'ec2RateLimits'>> & { ec2RateLimits: false | { mutating: BucketLimits; nonMutating: BucketLimits } };

/** What one reconcile run did (POST /local/reconcile). */
export interface ReconcileCounts {
  connections: number;
  firstSeen: number;
  stateChanged: number;
  recovered: number;
  accepted: number;
  rejected: number;
  pending: number;
  revoked: number;
  timedOut: number;
  reminded: number;
  failed: number;
}

export interface ReconcileSummary {
  startedAt: string;
  finishedAt: string;
  /** With spokes: each of them, and why it could not be reached. */
  spokes?: Array<{ providerAccountId: string; serviceRegion: string; services: number; error?: { code: string; message: string } }>;
  services: Array<
    ReconcileCounts & {
      serviceId: string;
      revocationLimit?: { candidates: number; admitted: number; maxRevocationsPerRun: number; maxRevocationPercent: number };
      error?: { name: string; message: string };
      providerAccountId?: string;
      serviceRegion?: string;
      /** The run wired its connection notifications: the topic, and the events it created. */
      notificationsWired?: { topicArn: string; events: string[] };
      notificationsError?: { code: string; message: string };
      /** EC2 describes it without vpce-gatekeeper:managed=true: what to do about it. */
      untagged?: string;
    }
  >;
  totals: ReconcileCounts & { services: number; revocationLimitHits: number; failedServices: number; spokeErrors: number; notificationsWired: number };
}



/** Where the stack's parts are. */
export interface Health {
  status: 'ok';
  tableName: string;
  dynamodbEndpoint: string;
  ec2Endpoint: string;
  snsEndpoint: string;
  sqsEndpoint: string;
  inboundTopicArn: string;
  outboundTopicArn: string;
  /** The stack's own account and Region and each spoke: the topic delivering their notifications, and its subscription. */
  spokes: InboundSubscription[];
  notificationQueueUrl: string;
  deadLetterQueueUrl: string;
  deadLetterQueueArn: string;
  /**
   * Notifications on their way (held between topic and queue, or in the queue: waiting,
   * being gathered into a batch, or back after a failure), invocations running, messages in
   * the queue, and dead letters.
   */
  deliveries: { scheduled: number; running: number; queued: number; deadLetters: number };
  /** Reconciler runs going now, completed and failed since start. */
  reconciles: { running: number; completed: number; failed: number };
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RawResponse {
  status: number;
  body: unknown;
}

export interface StartOptions {
  /** A policy file's contents (an object is written as JSON, a string as is). */
  policy?: string | Record<string, unknown>;
  /** Or a path to an existing policy file. */
  policyFile?: string;
  /** Pending → available delay (ACCEPT_DELAY_MS). Default 200 here, to keep tests quick. */
  acceptDelayMs?: number;
  /** The notification queue's visibility timeout, the delay before a retry (LOCAL_VISIBILITY_TIMEOUT_MS). Default 5000 here. */
  visibilityTimeoutMs?: number;
  /** Receives before a message moves to the dead-letter queue (LOCAL_MAX_RECEIVE_COUNT). Default: the deployed 5. */
  maxReceiveCount?: number;
  /** The event source mapping's batching window (LOCAL_BATCHING_WINDOW_MS). Default: the deployed 1 s. */
  batchingWindowMs?: number;
  /** The event source mapping's batch size (LOCAL_BATCH_SIZE): over 10 needs a window of a second or more, as on AWS. Default: the deployed size. */
  batchSize?: number;
  /** Seconds between scheduled reconciler runs (RECONCILE_INTERVAL_SECONDS). Default 0 (off) here. */
  reconcileIntervalSeconds?: number;
  /** After which a local function invocation has failed (LOCAL_FUNCTION_TIMEOUT_MS). Default: the deployed timeouts. */
  functionTimeoutMs?: number;
  /** Extra environment for the child process. */
  env?: Record<string, string>;
  /** `--spokes`: more accounts and Regions (`account:region`) the stack decides for. */
  spokes?: string[];
  /** `--auth jwt`: the approvals API behind a JWT authorizer and the local OIDC issuer. Default iam. */
  auth?: 'iam' | 'jwt';
}

/** Thrown when the stack answers with an unexpected status. */
export class LocalStackHttpError extends Error {
  override readonly name = 'LocalStackHttpError';
  constructor(
    readonly status: number,
    readonly body: unknown,
    request: string,
  ) {
    super(`${request} answered ${status}: ${JSON.stringify(body)}`);
  }
}

/** Polls `predicate` until it returns something other than false/undefined/null, and returns that. */
export async function waitFor<T>(
  predicate: () => T | false | undefined | null | Promise<T | false | undefined | null>,
  { timeoutMs = 10_000, intervalMs = 50, description = 'condition' }: { timeoutMs?: number; intervalMs?: number; description?: string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value !== false && value !== undefined && value !== null) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${why}`);
    }
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}

/** A running local stack. Every helper throws LocalStackHttpError on an unexpected status. */
export interface LocalStack {
  /** e.g. http://127.0.0.1:41234 */
  readonly baseUrl: string;
  /** The EC2 endpoint (what the stack sets as AWS_ENDPOINT_URL_EC2). */
  readonly ec2Endpoint: string;
  /** The SNS endpoint (what the stack sets as AWS_ENDPOINT_URL_SNS). */
  readonly snsEndpoint: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** An EC2Client pointed at the simulator. */
  ec2Client(options?: { maxAttempts?: number }): EC2Client;
  /** An SNSClient pointed at the simulated SNS. */
  snsClient(options?: { maxAttempts?: number }): SNSClient;
  /** Creates an endpoint service (acceptance required unless told otherwise). */
  createService(options?: ServiceOptions): Promise<CreatedService>;
  /** A consumer creates an endpoint; the stack publishes a Connect notification. */
  createEndpoint(serviceId: string, consumer: { ownerAccountId: string; region?: string }): Promise<{ vpcEndpointId: string; state: EndpointState }>;
  /** `count` endpoints of one owner at once (up to 10,000), each publishing its Connect. */
  createEndpoints(serviceId: string, consumer: { ownerAccountId: string; region?: string; count: number }): Promise<{ vpcEndpointIds: string[] }>;
  /** Runs the reconciler now; throws LocalStackHttpError (500) when the run failed. */
  reconcile(): Promise<ReconcileSummary>;
  /** Moves the dead letters back to the notification queue (SQS message move); throws LocalStackHttpError (500) when the task failed. */
  redriveDlq(): Promise<RedriveSummary>;
  /** The consumer deletes its endpoint; the stack publishes a Delete notification. */
  deleteEndpoint(serviceId: string, vpcEndpointId: string): Promise<LocalEndpoint>;
  /** EC2's view of a service's endpoint connections. */
  listEndpoints(serviceId: string): Promise<LocalEndpoint[]>;
  /** Publishes a raw string to the inbound topic (or a spoke's), which delivers it to the queue. */
  notify(rawMessage: string, topicArn?: string): Promise<void>;
  /** Everything published to the inbound topics since the last reset, in order. */
  notifications(): Promise<InboundMessage[]>;
  /** Table name, DynamoDB endpoint, topic ARNs, EC2/SNS endpoints. */
  health(): Promise<Health>;
  /** What the handler published to the outbound topic, in order. */
  outbox(): Promise<OutboxMessage[]>;
  /** EC2 calls received (and failed by injected faults), by action and by endpoint. */
  calls(): Promise<Calls>;
  /** Replaces the injected faults (`{}` clears them); returns the faults in force. */
  faults(body: Faults): Promise<FaultsInForce>;
  /** The messages in the dead-letter queue: notifications received maxReceiveCount times without going through. */
  dlq(): Promise<DeadLetter[]>;
  /** Every invocation of the notification function since the last reset. */
  invocations(): Promise<InvocationRecord[]>;
  /** Back to empty: simulator, table, outbox, calls, DLQ and faults; policies reloaded. */
  reset(): Promise<void>;
  /** Any request, for testing the contract itself; never throws on status. */
  request(method: string, path: string, body?: unknown): Promise<RawResponse>;
  /** Polls `predicate` until it returns a value (see the standalone waitFor). */
  waitFor: typeof waitFor;
  /** The stack's table, for reading records and writing what only a hand edit would. */
  table(): Promise<{ db: DynamoDBDocumentClient; tableName: string }>;
  /** One connection's record, read consistently from the table. */
  record(serviceId: string, endpointId: string): Promise<ConnectionRecord | undefined>;
  /** True once no notification is waiting to be delivered or being handled. */
  idle(): Promise<boolean>;
  /** SIGTERM, and waits for the process to exit (SIGKILL after 10 s). */
  stop(): Promise<ExitStatus>;
}

/** Starts `tsx local/main.ts` with PORT=0 and waits for its ready line. */
export async function startLocalStack(options: StartOptions = {}): Promise<LocalStack> {
  const tempDir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-e2e-'));
  const args = ['--import', 'tsx', 'local/main.ts'];
  if (options.policy !== undefined) {
    const file = join(tempDir, 'policy.yaml');
    await writeFile(file, typeof options.policy === 'string' ? options.policy : JSON.stringify(options.policy, null, 2));
    args.push('--policy', file);
  } else if (options.policyFile !== undefined) {
    args.push('--policy', options.policyFile);
  }
  if (options.auth) args.push('--auth', options.auth);
  if (options.spokes?.length) args.push('--spokes', options.spokes.join(','));
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      PORT: '0',
      ACCEPT_DELAY_MS: String(options.acceptDelayMs ?? 200),
      LOCAL_VISIBILITY_TIMEOUT_MS: String(options.visibilityTimeoutMs ?? 5000),
      ...(options.maxReceiveCount === undefined ? {} : { LOCAL_MAX_RECEIVE_COUNT: String(options.maxReceiveCount) }),
      ...(options.batchingWindowMs === undefined ? {} : { LOCAL_BATCHING_WINDOW_MS: String(options.batchingWindowMs) }),
      ...(options.batchSize === undefined ? {} : { LOCAL_BATCH_SIZE: String(options.batchSize) }),
      RECONCILE_INTERVAL_SECONDS: String(options.reconcileIntervalSeconds ?? 0),
      ...(options.functionTimeoutMs === undefined ? {} : { LOCAL_FUNCTION_TIMEOUT_MS: String(options.functionTimeoutMs) }),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  try {
    const baseUrl = await readyUrl(child, () => output);
    return localStack(baseUrl, child, () => output, tempDir);
  } catch (error) {
    await terminate(child);
    await rm(tempDir, { recursive: true, force: true });
    throw error;
  }
}

function readyUrl(child: ChildProcess, output: () => string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => finish(new Error(`the local stack was not ready within ${START_TIMEOUT_MS} ms:\n${output()}`)), START_TIMEOUT_MS);
    const onData = () => {
      const url = READY_LINE.exec(output())?.[1];
      if (url) finish(undefined, url);
    };
    const onExit = (code: number | null) => finish(new Error(`the local stack exited (code ${code}) before it was ready:\n${output()}`));
    function finish(error: Error | undefined, url?: string) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (url) resolvePromise(url);
      else reject(error);
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

function localStack(baseUrl: string, child: ChildProcess, output: () => string, tempDir: string): LocalStack {
  const request = async (method: string, path: string, body?: unknown): Promise<RawResponse> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, body: parsed };
  };
  const expect = async <T>(method: string, path: string, status: number, body?: unknown): Promise<T> => {
    const response = await request(method, path, body);
    if (response.status !== status) throw new LocalStackHttpError(response.status, response.body, `${method} ${path}`);
    return response.body as T;
  };
  const clientConfig = (endpoint: string, maxAttempts = 3) => ({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts,
  });
  const ec2Endpoint = `${baseUrl}/aws/ec2`;
  const snsEndpoint = `${baseUrl}/aws/sns`;
  let tableClient: Promise<{ db: DynamoDBDocumentClient; tableName: string }> | undefined;
  const table = () =>
    (tableClient ??= expect<Health>('GET', '/local/health', 200).then(({ dynamodbEndpoint, tableName }) => ({
      db: DynamoDBDocumentClient.from(new DynamoDBClient(clientConfig(dynamodbEndpoint))),
      tableName,
    })));
  return {
    baseUrl,
    ec2Endpoint,
    snsEndpoint,
    output,
    ec2Client: (options = {}) => new EC2Client(clientConfig(ec2Endpoint, options.maxAttempts)),
    snsClient: (options = {}) => new SNSClient(clientConfig(snsEndpoint, options.maxAttempts)),
    createService: (options = {}) => expect('POST', '/local/services', 201, options),
    createEndpoint: (serviceId, consumer) => expect('POST', `/local/services/${serviceId}/endpoints`, 201, consumer),
    createEndpoints: (serviceId, consumer) => expect('POST', `/local/services/${serviceId}/endpoints`, 201, consumer),
    reconcile: () => expect('POST', '/local/reconcile', 200, {}),
    redriveDlq: () => expect('POST', '/local/dlq/redrive', 200, {}),
    deleteEndpoint: (serviceId, vpcEndpointId) => expect('DELETE', `/local/services/${serviceId}/endpoints/${vpcEndpointId}`, 200),
    listEndpoints: async (serviceId) =>
      (await expect<{ endpoints: LocalEndpoint[] }>('GET', `/local/services/${serviceId}/endpoints`, 200)).endpoints,
    notify: async (rawMessage, topicArn) => {
      await expect('POST', '/local/notifications', 202, { message: rawMessage, ...(topicArn ? { topicArn } : {}) });
    },
    notifications: async () => (await expect<{ messages: InboundMessage[] }>('GET', '/local/notifications', 200)).messages,
    health: () => expect('GET', '/local/health', 200),
    outbox: async () => (await expect<{ messages: OutboxMessage[] }>('GET', '/local/outbox', 200)).messages,
    calls: () => expect('GET', '/local/calls', 200),
    faults: (body) => expect('POST', '/local/faults', 200, body),
    dlq: async () => (await expect<{ messages: DeadLetter[] }>('GET', '/local/dlq', 200)).messages,
    invocations: async () => (await expect<{ invocations: InvocationRecord[] }>('GET', '/local/invocations', 200)).invocations,
    reset: async () => {
      await expect('POST', '/local/reset', 200, {});
    },
    request,
    waitFor,
    table,
    record: async (serviceId, endpointId) => {
      const { db, tableName } = await table();
      const output = await db.send(new GetCommand({ TableName: tableName, Key: keys.connection(serviceId, endpointId), ConsistentRead: true }));
      return output.Item as ConnectionRecord | undefined;
    },
    idle: async () => {
      const { deliveries } = await expect<Health>('GET', '/local/health', 200);
      return deliveries.scheduled === 0 && deliveries.running === 0;
    },
    stop: async () => {
      (await tableClient)?.db.destroy();
      const status = await terminate(child);
      await rm(tempDir, { recursive: true, force: true });
      return status;
    },
  };
}

async function terminate(child: ChildProcess): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const exited = new Promise<ExitStatus>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  const status = await exited;
  clearTimeout(timer);
  return status;
}

/** The event types published about one endpoint, in order. */
export function eventTypesFor(outbox: OutboxMessage[], endpointId: string): string[] {
  return outbox
    .map((m) => m.message as { eventType: string; endpointId?: string })
    .filter((m) => m.endpointId === endpointId)
    .map((m) => m.eventType);
}
