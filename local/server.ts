import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../lib/errors';
import type { CallLog } from './call-log';
import { Ec2ApiError } from './ec2-errors';
import { answerEc2Query, ec2ErrorResponse } from './ec2-query';
import type { EndpointConnection, PrivateLinkSimulator } from './ec2-simulator';
import { type Faults, faultSettingsSchema } from './faults';
import { InvalidJsonError, parseJsonBody, readBody, sendJson, sendXml } from './http-io';
import { requestId } from './ids';
import { describeError, logLocal } from './log';
import type { LocalHttpApi } from './http-api';
import { organizationRoutes, type OrganizationPlane } from './organization-routes';
import type { ScheduledFunction } from './scheduled-function';
import { answerSqs, type LocalQueue, type LocalSqs } from './sqs';
import type { InboundSns } from './sns-inbound';
import type { EventSourceMapping } from './event-source-mapping';
import { redriveDeadLetters } from './dlq-redrive';
import { type OutboundSns, SnsApiError, snsErrorResponse } from './sns-outbound';

/** Everything the routes act on. */
export interface ControlPlane {
  simulator: PrivateLinkSimulator;
  inbound: InboundSns;
  outbound: OutboundSns;
  faults: Faults;
  calls: CallLog;
  /** Where things are, for GET /local/health. */
  info: Record<string, string>;
  /** Back to an empty simulator and table, with the policies reloaded. */
  reset(): Promise<void>;
  /** The reconciler, on its schedule and on POST /local/reconcile. */
  reconciler: ScheduledFunction;
  /** The account's queues, answered over the SQS protocol at SQS_PATH. */
  sqs: LocalSqs;
  /** Where the inbound topic delivers. */
  notificationQueue: LocalQueue;
  /** Where the notification queue moves a message after maxReceiveCount receives. */
  deadLetterQueue: LocalQueue;
  /** The notification function's event source mapping on the notification queue. */
  notificationSource: EventSourceMapping;
  /** DynamoDB requests received since the stack started, by operation. */
  dynamoRequests(): Promise<Record<string, number>>;
  /** The AWS Organization, its API, and the STS that hands out the role to read it. */
  organization: OrganizationPlane;
}

/** Where the SDK clients are pointed: AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_SNS are base URL + these. */
export const EC2_PATH = '/aws/ec2';
export const SNS_PATH = '/aws/sns';
export const SQS_PATH = '/aws/sqs';
export const ORGANIZATIONS_PATH = '/aws/organizations';
export const STS_PATH = '/aws/sts';

export interface JsonReply {
  status: number;
  body: unknown;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: RegExp;
  handle: (pathParams: string[], body: string) => JsonReply | Promise<JsonReply>;
}

const createServiceBody = z.strictObject({
  serviceId: z.string().regex(/^vpce-svc-[0-9a-f]{17}$/, 'must be vpce-svc- followed by 17 lowercase hex digits').optional(),
  acceptanceRequired: z.boolean().default(true),
  /** Who may create an endpoint to it (EC2's allowed principals); anyone by default. */
  allowedPrincipals: z.array(z.string()).optional(),
  /** The service's tags, key to value: vpce-gatekeeper:managed=true manages it when tagged services are. */
  tags: z.record(z.string().min(1).max(128), z.string().max(256)).optional(),
});

const createEndpointBody = z.strictObject({
  ownerAccountId: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as us-east-1').default('us-east-1'),
  /** For scale tests: this many endpoints of the same owner at once. */
  count: z.int('must be a whole number').min(1, 'must be at least 1').max(10_000, 'must be at most 10000').optional(),
});

const redriveBody = z.strictObject({ maxNumberOfMessagesPerSecond: z.int().min(1).max(500).optional() });

const notificationBody = z.strictObject({ message: z.string() });
const emptyBody = z.strictObject({});

function controlRoutes(plane: ControlPlane): Route[] {
  const { simulator } = plane;
  return [
    {
      method: 'GET',
      path: /^\/local\/health$/,
      handle: () => ok({ status: 'ok', ...plane.info, deliveries: deliveries(plane), reconciles: plane.reconciler.activity() }),
    },
    {
      method: 'POST',
      path: /^\/local\/services$/,
      handle: (_, body) => {
        const { serviceId } = simulator.createService(parseJsonBody(body, createServiceBody));
        return { status: 201, body: { serviceId } };
      },
    },
    {
      method: 'GET',
      path: /^\/local\/services$/,
      handle: () => ok({ services: simulator.listServices().map(({ serviceId, acceptanceRequired }) => ({ serviceId, acceptanceRequired })) }),
    },
    {
      method: 'GET',
      path: /^\/local\/services\/([^/]+)\/permissions$/,
      handle: ([serviceId = '']) => {
        const service = simulator.findService(serviceId);
        if (!service) throw new NotFoundError(`endpoint service ${serviceId} does not exist`);
        return ok({ allowedPrincipals: service.allowedPrincipals.map(({ principal }) => principal) });
      },
    },
    ...organizationRoutes(plane.organization),
    {
      method: 'POST',
      path: /^\/local\/services\/([^/]+)\/endpoints$/,
      handle: ([serviceId = ''], body) => {
        const { count, ...consumer } = parseJsonBody(body, createEndpointBody);
        if (count !== undefined) {
          simulator.endpointsOf(serviceId); // a missing service is refused before anything is created
          const vpcEndpointIds = Array.from({ length: count }, () => simulator.createEndpoint(serviceId, consumer).vpcEndpointId);
          return { status: 201, body: { vpcEndpointIds } };
        }
        const { vpcEndpointId, state } = simulator.createEndpoint(serviceId, consumer);
        return { status: 201, body: { vpcEndpointId, state } };
      },
    },
    {
      method: 'GET',
      path: /^\/local\/services\/([^/]+)\/endpoints$/,
      handle: ([serviceId = '']) => ok({ endpoints: simulator.endpointsOf(serviceId).map(endpointView) }),
    },
    {
      method: 'DELETE',
      path: /^\/local\/services\/([^/]+)\/endpoints\/([^/]+)$/,
      handle: ([serviceId = '', vpcEndpointId = '']) => ok(endpointView(simulator.deleteEndpoint(serviceId, vpcEndpointId))),
    },
    {
      method: 'POST',
      path: /^\/local\/notifications$/,
      handle: (_, body) => ({ status: 202, body: { messageId: plane.inbound.publish(parseJsonBody(body, notificationBody).message) } }),
    },
    { method: 'GET', path: /^\/local\/notifications$/, handle: () => ok({ messages: plane.inbound.messages() }) },
    { method: 'GET', path: /^\/local\/outbox$/, handle: () => ok({ messages: plane.outbound.messages() }) },
    { method: 'GET', path: /^\/local\/dlq$/, handle: () => ok({ messages: plane.deadLetterQueue.messages() }) },
    {
      method: 'GET',
      path: /^\/local\/dynamodb-calls$/,
      handle: async () => {
        const byOperation = await plane.dynamoRequests();
        return ok({ total: Object.values(byOperation).reduce((sum, n) => sum + n, 0), byOperation });
      },
    },
    { method: 'GET', path: /^\/local\/invocations$/, handle: () => ok({ invocations: plane.notificationSource.invocations() }) },
    {
      method: 'POST',
      path: /^\/local\/reconcile$/,
      handle: async (_, body) => {
        parseJsonBody(body, emptyBody);
        return invoke('ReconcileFailed', 'the reconcile run', () => plane.reconciler.run());
      },
    },
    {
      method: 'POST',
      path: /^\/local\/dlq\/redrive$/,
      handle: async (_, body) => {
        const { maxNumberOfMessagesPerSecond } = parseJsonBody(body, redriveBody);
        const { sqsEndpoint = '' } = plane.info;
        const summary = await redriveDeadLetters(sqsEndpoint, plane.deadLetterQueue.arn, maxNumberOfMessagesPerSecond);
        if (summary.status === 'COMPLETED') return ok(summary);
        return { status: 500, body: { error: { code: 'RedriveFailed', message: `the message move task ended ${summary.status}: ${summary.failureReason ?? 'no reason given'}` } } };
      },
    },
    { method: 'GET', path: /^\/local\/calls$/, handle: () => ok(plane.calls.snapshot()) },
    { method: 'GET', path: /^\/local\/faults$/, handle: () => ok(plane.faults.current()) },
    { method: 'POST', path: /^\/local\/faults$/, handle: (_, body) => ok(plane.faults.set(parseJsonBody(body, faultSettingsSchema))) },
    {
      method: 'POST',
      path: /^\/local\/reset$/,
      handle: async (_, body) => {
        parseJsonBody(body, emptyBody);
        await plane.reset();
        return ok({ status: 'reset' });
      },
    },
  ];
}

/**
 * Notifications on their way: deliveries held back between the topic and the
 * queue and messages in the queue (waiting, being gathered, or back after a
 * failure once their visibility timeout ends), and invocations running.
 */
function deliveries(plane: ControlPlane): { scheduled: number; running: number; queued: number; deadLetters: number } {
  const { visible, inFlight } = plane.notificationQueue.counts();
  return {
    scheduled: plane.inbound.pendingDeliveries() + visible + inFlight,
    running: plane.notificationSource.activity().running,
    queued: visible + inFlight,
    deadLetters: plane.deadLetterQueue.counts().visible + plane.deadLetterQueue.counts().inFlight,
  };
}

/** Paths of the approvals API: everything outside /local and /aws. */
const API_PATH = /^\/(?!(local|aws)(\/|$))/;

/** The one HTTP listener: control routes under /local, EC2 and SNS under /aws, the approvals API at the root. */
export function createRequestListener(plane: ControlPlane, api?: LocalHttpApi): RequestListener {
  const routes = controlRoutes(plane);
  return (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const handled = api && API_PATH.test(path) ? api.serve(request, response) : handleRequest(plane, routes, request, response);
    void handled.catch((error: unknown) => {
      logLocal('error', 'request failed after the response started', describeError(error));
      response.destroy();
    });
  };
}

async function handleRequest(plane: ControlPlane, routes: Route[], request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname.replace(/(.)\/+$/, '$1');
  if (request.method === 'POST' && (path === EC2_PATH || path === SNS_PATH)) {
    await answerAwsRequest(plane, path, request, response);
    return;
  }
  if (request.method === 'POST' && (path === ORGANIZATIONS_PATH || path === STS_PATH)) {
    await answerOrganizationOrSts(plane.organization, path, request, response);
    return;
  }
  if (request.method === 'POST' && path === SQS_PATH) {
    const answer = answerSqs(request.headers['x-amz-target']?.toString(), await readBody(request), plane.sqs);
    response.writeHead(answer.status, {
      'content-type': answer.contentType,
      'x-amzn-requestid': answer.requestId,
      ...(answer.queryError ? { 'x-amzn-query-error': answer.queryError } : {}),
    });
    response.end(answer.body);
    return;
  }
  try {
    const reply = await route(routes, request.method ?? 'GET', path, request);
    sendJson(response, reply.status, reply.body);
  } catch (error) {
    const { status, code, message } = errorReply(error);
    sendJson(response, status, { error: { code, message } });
  }
}

async function route(routes: Route[], method: string, path: string, request: IncomingMessage): Promise<JsonReply> {
  for (const candidate of routes) {
    const match = candidate.path.exec(path);
    if (match && candidate.method === method) {
      const pathParams = match.slice(1).map(decodePathSegment);
      return candidate.handle(pathParams, await readBody(request));
    }
  }
  throw new NotFoundError(`no route for ${method} ${path}`);
}

async function answerAwsRequest(plane: ControlPlane, path: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  try {
    const body = await readBody(request);
    const answer = path === EC2_PATH ? answerEc2Query(body, plane) : plane.outbound.answer(body);
    if ('withhold' in answer && answer.withhold) {
      // crashAfterEc2Call: EC2 has acted; the caller never hears back. The request is
      // left open for as long as the stack runs (closeServer ends it), so the invocation
      // that made it times out and is declared failed, the code after the call never
      // runs, and the SDK has no error to retry into a second call: a Lambda that died.
      logLocal('warn', 'EC2 acted and its answer is withheld (crashAfterEc2Call)', { requestId: answer.requestId });
      return;
    }
    sendXml(response, answer);
  } catch (error) {
    logLocal('error', 'AWS API request failed', { path, ...describeError(error) });
    const message = 'An internal error has occurred';
    sendXml(
      response,
      path === EC2_PATH
        ? ec2ErrorResponse(new Ec2ApiError('InternalError', message, 500), requestId())
        : snsErrorResponse(new SnsApiError('InternalError', message, 500, 'Receiver'), requestId()),
    );
  }
}

async function answerOrganizationOrSts(plane: OrganizationPlane, path: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const body = await readBody(request);
  if (path === STS_PATH) {
    sendXml(response, plane.sts.answer(body));
    return;
  }
  const answer = plane.api.answer(request.headers['x-amz-target']?.toString(), body, request.headers.authorization);
  const text = answer.body;
  response.writeHead(answer.status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': answer.requestId,
  });
  response.end(text);
}

/** The one place that maps errors to HTTP statuses; a 5xx says nothing about internals. */
function errorReply(error: unknown): { status: number; code: string; message: string } {
  if (error instanceof InvalidJsonError) return { status: 400, code: 'InvalidJson', message: error.message };
  if (error instanceof ValidationError) return { status: 400, code: 'InvalidRequest', message: error.message };
  if (error instanceof ForbiddenError) return { status: 403, code: 'Forbidden', message: error.message };
  if (error instanceof NotFoundError) return { status: 404, code: 'NotFound', message: error.message };
  if (error instanceof ConflictError) return { status: 409, code: 'Conflict', message: error.message };
  logLocal('error', 'control request failed', describeError(error));
  return { status: 500, code: 'InternalError', message: 'the local stack failed to handle the request; see its stderr' };
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError(`path segment '${segment}' is not valid percent-encoding`);
  }
}

/** Invokes a local function and answers with what it returned, or 500 saying how it failed. */
async function invoke(code: string, what: string, run: () => Promise<unknown>): Promise<JsonReply> {
  try {
    return ok(await run());
  } catch (error) {
    const { errorType, errorMessage } = describeError(error);
    return { status: 500, body: { error: { code, message: `${what} failed (${errorType}): ${errorMessage}` } } };
  }
}

function ok(body: unknown): JsonReply {
  return { status: 200, body };
}

function endpointView(connection: EndpointConnection): { vpcEndpointId: string; ownerAccountId: string; region: string; state: string } {
  const { vpcEndpointId, ownerAccountId, region, state } = connection;
  return { vpcEndpointId, ownerAccountId, region, state };
}
