import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Ec2ApiError } from './aws/ec2-errors';
import { answerEc2Query, ec2ErrorResponse } from './aws/ec2-query';
import { NOSNIFF_HEADER, type QueryResponse, readBody, sendJson, sendXml } from './http-io';
import { requestId } from './aws/ids';
import { describeError, logLocal } from './log';
import type { LocalApiGateway } from './lambda/api-gateway';
import type { OrganizationPlane } from './aws/organization-plane';
import { answerSqs } from './aws/sqs';
import { SnsApiError, snsErrorResponse } from './aws/sns-outbound';
import { controlRoutes, type ControlPlane } from './control/routes';
import { errorReply, requireSameOrigin, route, type Route } from './control/router';
import { answerSlackApi, SLACK_API_PATH } from './slack/web-api';

/** Where the SDK clients are pointed: AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_SNS are base URL + these. */
export const EC2_PATH = '/aws/ec2';
export const SNS_PATH = '/aws/sns';
export const SQS_PATH = '/aws/sqs';
export const ORGANIZATIONS_PATH = '/aws/organizations';
export const STS_PATH = '/aws/sts';
export const SSM_PATH = '/aws/ssm';

/** Paths of the approvals API: everything outside /local and /aws. */
const API_PATH = /^\/(?!(local|aws)(\/|$))/;

/**
 * The one HTTP listener: control routes under /local, EC2 and SNS under /aws, and
 * at the root the HTTP API's functions (the approvals API, Slack's interactions),
 * each answering its own routes, the first answering what none takes (its `$default` route).
 */
export function createRequestListener(plane: ControlPlane, apis: LocalApiGateway[] = []): RequestListener {
  const routes = controlRoutes(plane);
  return (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const api = API_PATH.test(path) ? (apis.find((candidate) => candidate.handles(request.method ?? 'GET', request.url ?? '/')) ?? apis[0]) : undefined;
    // The stack's own answers say nosniff; the API's are the function's, as it returned them.
    if (!api) response.setHeader(NOSNIFF_HEADER, 'nosniff');
    const handled = api ? api.serve(request, response) : handleRequest(plane, routes, request, response);
    void handled.catch((error: unknown) => {
      logLocal('error', 'request failed after the response started', describeError(error));
      response.destroy();
    });
  };
}

async function handleRequest(plane: ControlPlane, routes: Route[], request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname.replace(/(.)\/+$/, '$1');
  // The simulated AWS APIs and the control routes change the stack: never at a page of another origin's bidding.
  try {
    requireSameOrigin(request);
  } catch (error) {
    request.resume();
    const { status, code, message } = errorReply(error);
    sendJson(response, status, { error: { code, message } });
    return;
  }
  if (request.method === 'POST' && (path === EC2_PATH || path === SNS_PATH)) {
    await answerAwsRequest(plane, path, request, response);
    return;
  }
  if (request.method === 'GET' && path === SNS_PATH) {
    // A SubscriptionConfirmation's SubscribeURL, fetched: no credentials needed, as in SNS.
    sendXml(response, plane.inbound.answerSubscribeUrl(new URL(request.url ?? '/', 'http://localhost').searchParams));
    return;
  }
  if (request.method === 'POST' && path === STS_PATH) {
    sendXml(response, plane.sts.answer(await readBody(request), request.headers.authorization));
    return;
  }
  if (request.method === 'POST' && path === ORGANIZATIONS_PATH) {
    await answerOrganizations(plane.organization, request, response);
    return;
  }
  if (request.method === 'POST' && path === SSM_PATH) {
    const body = Buffer.from(await readBody(request), 'utf8');
    const answer = plane.ssm.answer({ method: 'POST', url: request.url ?? '/', rawHeaders: request.rawHeaders, body });
    response.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(answer.body), 'x-amzn-requestid': answer.requestId });
    response.end(answer.body);
    return;
  }
  if (plane.slack && path.startsWith(SLACK_API_PATH)) {
    // Slack's Web API: its own wire rules (form or JSON, bearer token), not the /local control routes'.
    const answer = answerSlackApi(plane.slack.workspace, {
      method: request.method ?? 'GET',
      path,
      query: new URL(request.url ?? '/', 'http://localhost').search.slice(1),
      headers: request.headers,
      body: await readBody(request),
    });
    response.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
    response.end(answer.body);
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

async function answerAwsRequest(plane: ControlPlane, path: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  try {
    const body = await readBody(request);
    const authorization = request.headers.authorization;
    const answer =
      path === EC2_PATH
        ? answerEc2Query({ body, authorization }, { ...plane, topicExists: (topicArn) => plane.inbound.exists(topicArn) })
        : answerSns(plane, body, authorization);
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

/** SNS: the inbound topics confirm their subscriptions; the outbound topic takes what the functions publish. */
function answerSns(plane: ControlPlane, body: string, authorization: string | undefined): QueryResponse {
  return new URLSearchParams(body).get('Action') === 'ConfirmSubscription' ? plane.inbound.answer(body, authorization) : plane.outbound.answer(body);
}

async function answerOrganizations(plane: OrganizationPlane, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const body = await readBody(request);
  const answer = plane.api.answer(request.headers['x-amz-target']?.toString(), body, request.headers.authorization);
  const text = answer.body;
  response.writeHead(answer.status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': answer.requestId,
  });
  response.end(text);
}

