import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2WithIAMAuthorizer, Context } from 'aws-lambda';
import { NOSNIFF_HEADER, sendJson } from '../http-io';
import { describeError, logLocal } from '../log';
import { verifySignature, type LocalPrincipal } from './sigv4';
import { inInvocation, lambdaContext } from './lambda-runtime';
import { DEFAULT_ROUTE } from '../../lib/http/router';
import type { LocalJwtAuthorizer } from './jwt-authorizer';

/**
 * API Gateway's HTTP API in front of the approvals handler, as deployed: it
 * matches the route, authorizes it (SigV4 with IAM authorization, the default;
 * or a JWT authorizer; the console's public routes not at all), and invokes the
 * real handler with a payload 2.0 event whose requestContext.authorizer names
 * the verified caller (`iam`, or `jwt` with the token's claims).
 */

export const API_REGION = 'us-east-1';
export const API_SERVICE = 'execute-api';
const ACCOUNT_ID = '000000000000';
/** API Gateway refuses larger payloads itself; the handler has its own, smaller limit. */
const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

/** The two fixed local callers (README: "The approvals API"). */
export const LOCAL_PRINCIPALS: readonly LocalPrincipal[] = [
  {
    accessKeyId: 'LOCALAPPROVER',
    secretAccessKey: 'local-approver-secret',
    userArn: `arn:aws:iam::${ACCOUNT_ID}:user/local-approver`,
    userId: 'AIDALOCALAPPROVER',
    accountId: ACCOUNT_ID,
  },
  {
    accessKeyId: 'LOCALVIEWER',
    secretAccessKey: 'local-viewer-secret',
    userArn: `arn:aws:iam::${ACCOUNT_ID}:user/local-viewer`,
    userId: 'AIDALOCALVIEWER',
    accountId: ACCOUNT_ID,
  },
];

/** The local approver's ARN, configured as the stage's approver list. */
export const LOCAL_APPROVER_ARN = LOCAL_PRINCIPALS[0]?.userArn ?? '';

export type HttpApiHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface HttpApiRoute {
  method: string;
  /** `/services/{serviceId}/connections`, as in serverless.yml. */
  path: string;
  /** 'public': deployed without an authorizer (the console's static assets). */
  access?: string;
}

/** How routes with an authorizer are authorized: IAM (SigV4), or a JWT authorizer. */
export type LocalApiAuth = { kind: 'iam' } | { kind: 'jwt'; authorizer: LocalJwtAuthorizer };

type RequestAuthorizer = APIGatewayProxyEventV2WithIAMAuthorizer['requestContext']['authorizer'] | { jwt: { claims: Record<string, string>; scopes: string[] | null } };

interface RouteMatcher {
  routeKey: string;
  public: boolean;
  method: string;
  pattern: RegExp;
  names: string[];
}

export class LocalApiGateway {
  private readonly matchers: RouteMatcher[];

  constructor(
    private readonly options: { routes: readonly HttpApiRoute[]; handler: HttpApiHandler; functionName: string; auth?: LocalApiAuth },
  ) {
    // API Gateway tries the routes it can name before its catch-all, `$default`.
    const routes = [...options.routes].sort((a, b) => Number(a.path === DEFAULT_ROUTE) - Number(b.path === DEFAULT_ROUTE));
    this.matchers = routes.map(({ method, path, access }) =>
      path === DEFAULT_ROUTE
        ? { routeKey: DEFAULT_ROUTE, public: access === 'public', method: '*', names: [], pattern: /^/ }
        : {
            routeKey: `${method} ${path}`,
            public: access === 'public',
            method,
            names: [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] ?? ''),
            pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
          },
    );
  }

  /** Whether one of this function's routes takes the request. */
  /** Whether one of this function's routes, other than a catch-all, takes the request. */
  handles(method: string, url: string): boolean {
    return ![undefined, DEFAULT_ROUTE].includes(this.match(method, url.split('?')[0] ?? '/')?.routeKey);
  }

  /** Answers one request, as API Gateway and the function behind it would. */
  async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '/';
    const [rawPath = '/', rawQueryString = ''] = url.split(/\?(.*)/s);
    const method = request.method ?? 'GET';
    const route = this.match(method, rawPath);
    if (!route) return refuse(response, 404, 'NotFound', `no route for ${method} ${rawPath}`);
    const body = await readPayload(request);
    if (!body) return refuse(response, 413, 'PayloadTooLarge', `the request body is larger than ${MAX_PAYLOAD_BYTES} bytes`);
    let authorizer: RequestAuthorizer | undefined;
    const auth = this.options.auth ?? { kind: 'iam' };
    if (route.public) {
      authorizer = undefined;
    } else if (auth.kind === 'jwt') {
      const verified = await auth.authorizer.verify(request.headers.authorization);
      if (!verified.ok) {
        // What API Gateway's JWT authorizer answers: 401, {"message":"Unauthorized"}, the reason in WWW-Authenticate.
        logLocal('info', 'JWT refused', { reason: verified.message });
        response.writeHead(401, {
          'content-type': 'application/json',
          [NOSNIFF_HEADER]: 'nosniff',
          'www-authenticate': `Bearer error="invalid_token" error_description="${verified.message.replace(/"/g, "'")}"`,
        });
        response.end(JSON.stringify({ message: 'Unauthorized' }));
        return;
      }
      authorizer = { jwt: { claims: verified.claims, scopes: verified.scopes } };
    } else {
      const verified = verifySignature(
        { method, url, rawHeaders: request.rawHeaders, body },
        { region: API_REGION, service: API_SERVICE, principals: LOCAL_PRINCIPALS },
      );
      if (!verified.ok) return refuse(response, verified.status, verified.status === 401 ? 'Unauthorized' : 'InvalidSignature', verified.message);
      authorizer = iamAuthorizer(verified.principal);
    }

    const requestId = randomUUID();
    const event = toEvent({ request, route, rawPath, rawQueryString, body, authorizer, requestId });
    let result: unknown;
    try {
      result = await inInvocation(requestId, () => this.options.handler(event, lambdaContext(this.options.functionName, requestId)));
    } catch (error) {
      logLocal('error', 'approvals API handler failed', { requestId, ...describeError(error) });
      return refuse(response, 500, 'InternalError', 'Internal Server Error');
    }
    send(response, result);
  }

  private match(method: string, rawPath: string): { routeKey: string; public: boolean; pathParameters?: Record<string, string> } | undefined {
    for (const matcher of this.matchers) {
      const found = matcher.method === method || matcher.method === '*' ? matcher.pattern.exec(rawPath) : null;
      if (!found) continue;
      const values = found.slice(1).map(decode);
      if (!values.length) return { routeKey: matcher.routeKey, public: matcher.public };
      return {
        routeKey: matcher.routeKey,
        public: matcher.public,
        pathParameters: Object.fromEntries(matcher.names.map((name, i) => [name, values[i] ?? ''])),
      };
    }
    return undefined;
  }
}

function toEvent(parts: {
  request: IncomingMessage;
  route: { routeKey: string; pathParameters?: Record<string, string> };
  rawPath: string;
  rawQueryString: string;
  body: Buffer;
  authorizer: RequestAuthorizer | undefined;
  requestId: string;
}): Omit<APIGatewayProxyEventV2WithIAMAuthorizer, 'requestContext'> & { requestContext: Record<string, unknown> } {
  const { request, route, rawPath, rawQueryString, body, authorizer, requestId } = parts;
  const headers = joinValues(request.rawHeaders, (name) => name.toLowerCase());
  const query = new URLSearchParams(rawQueryString);
  const queryStringParameters = joinValues([...query.entries()].flat(), (name) => name);
  const binary = body.length > 0 && !isText(headers['content-type']);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath,
    rawQueryString,
    headers,
    ...(Object.keys(queryStringParameters).length ? { queryStringParameters } : {}),
    ...(route.pathParameters ? { pathParameters: route.pathParameters } : {}),
    requestContext: {
      accountId: ACCOUNT_ID,
      apiId: 'local',
      ...(authorizer ? { authorizer } : {}),
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0] ?? 'localhost',
      http: {
        method: request.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: route.routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: body.toString(binary ? 'base64' : 'utf8') } : {}),
    isBase64Encoded: binary,
  };
}

function iamAuthorizer(principal: LocalPrincipal): APIGatewayProxyEventV2WithIAMAuthorizer['requestContext']['authorizer'] {
  return {
    iam: {
      accessKey: principal.accessKeyId,
      accountId: principal.accountId,
      callerId: principal.userId,
      cognitoIdentity: null as never,
      principalOrgId: null as never,
      userArn: principal.userArn,
      userId: principal.userId,
    },
  };
}

/** What the handler returned, as API Gateway turns a payload 2.0 result into a response. */
function send(response: ServerResponse, result: unknown): void {
  if (typeof result === 'object' && result !== null && 'statusCode' in result) {
    const { statusCode, headers = {}, body = '', isBase64Encoded = false } = result as {
      statusCode: number;
      headers?: Record<string, string | number | boolean>;
      body?: string;
      isBase64Encoded?: boolean;
    };
    const bytes = Buffer.from(body, isBase64Encoded ? 'base64' : 'utf8');
    response.writeHead(statusCode, { ...headers, 'content-length': bytes.byteLength });
    response.end(bytes);
    return;
  }
  sendJson(response, 200, result);
}

/** The gateway's own answer (no route, too large, not authorized): the function never ran. */
function refuse(response: ServerResponse, status: number, code: string, message: string): void {
  response.setHeader(NOSNIFF_HEADER, 'nosniff');
  sendJson(response, status, { error: { code, message } });
}

/** The body, or undefined when it is over API Gateway's limit. */
async function readPayload(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.byteLength;
    if (size > MAX_PAYLOAD_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** Pairs of name, value, with repeated names joined by commas as API Gateway does. */
function joinValues(pairs: string[], nameOf: (name: string) => string): Record<string, string> {
  const joined: Record<string, string> = {};
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const name = nameOf(pairs[i] ?? '');
    const value = pairs[i + 1] ?? '';
    joined[name] = joined[name] === undefined ? value : `${joined[name]},${value}`;
  }
  return joined;
}

function isText(contentType: string | undefined): boolean {
  return !contentType || /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded)\b|[^;]*\+(json|xml)\b)/i.test(contentType);
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
