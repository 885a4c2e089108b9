import { readFileSync } from 'node:fs';
import {
  AcceptVpcEndpointConnectionsCommand,
  DescribeVpcEndpointConnectionsCommand,
  DescribeVpcEndpointServiceConfigurationsCommand,
  EC2ServiceException,
} from '@aws-sdk/client-ec2';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { getConnection } from '../../lib/aws/connection-store';
import { CONNECTION_STATES } from '../../lib/domain/connection';
import { fakeAws, newServiceId } from '../support/fake-ec2';

// The approvals handler fed API Gateway v2 events from events/, as Lambda receives
// them, against mocked EC2 and SNS and an embedded DynamoDB.

const APPROVER_ROLE = 'arn:aws:iam::123456789012:role/Approvers';
const SESSION_OF_APPROVER_ROLE = 'arn:aws:sts::123456789012:assumed-role/Approvers/alice';
const STRANGER = '999988887777';

// Configuration is read at cold start, so it is set before the handler is imported.
vi.hoisted(() => {
  process.env.APPROVER_PRINCIPALS = 'arn:aws:iam::123456789012:role/Approvers';
  process.env.APPROVER_GROUPS = 'approvers';
});
const { handler } = await import('../../handlers/http-api');

type Event = Record<string, unknown> & {
  pathParameters?: Record<string, string>;
  requestContext: Record<string, unknown> & { authorizer?: unknown };
  body?: string;
};

const context = { functionName: 'approvals-api', awsRequestId: 'test-request', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
const fixture = (name: string): Event => JSON.parse(readFileSync(new URL(`../../events/${name}`, import.meta.url), 'utf8')) as Event;

/** The accept event from events/, pointed at a connection of this test. */
function acceptEvent(serviceId: string, endpointId: string, change: (event: Event) => void = () => undefined): Event {
  const event = fixture('http-api-accept.json');
  event.pathParameters = { serviceId, endpointId };
  event.rawPath = `/services/${serviceId}/connections/${endpointId}/accept`;
  change(event);
  return event;
}

/** An accept of a connection of this test, with this JSON body. */
const acceptBody = (body: unknown) => (service: string, endpoint: string) => acceptEvent(service, endpoint, (e) => (e.body = JSON.stringify(body)));

/** The queue read from events/, with this query instead of its own. */
const listQuery = (query: Record<string, string>) => () => ({ ...fixture('http-api-list-connections-jwt.json'), queryStringParameters: query, rawQueryString: new URLSearchParams(query).toString() });

async function invoke(event: Event): Promise<{ status: number; body: Record<string, unknown> }> {
  const { status, body } = await invokeWithHeaders(event);
  return { status, body };
}

async function invokeWithHeaders(event: Event): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const response = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode ?? 0, body: JSON.parse(response.body ?? '{}') as Record<string, unknown>, headers: response.headers ?? {} };
}

/** The accept event turned into another route's, with the same caller unless changed. */
function routeEvent(method: string, path: string, routeKey: string, pathParameters: Record<string, string> | undefined, body?: unknown): Event {
  const event = fixture('http-api-accept.json');
  event.routeKey = `${method} ${routeKey}`;
  event.rawPath = path;
  event.pathParameters = pathParameters;
  event.body = body === undefined ? undefined : JSON.stringify(body);
  (event.requestContext as { routeKey: string }).routeKey = event.routeKey as string;
  return event;
}

/** EC2's RequestLimitExceeded as the SDK throws it once its retries are spent. */
const requestLimitExceeded = () =>
  new EC2ServiceException({ name: 'RequestLimitExceeded', $fault: 'client', $metadata: { httpStatusCode: 503, attempts: 8 }, message: 'Request limit exceeded.' });
const VIEWER = { iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/Viewers/bob' } };

let aws: ReturnType<typeof fakeAws>;
let serviceId: string;

beforeEach(() => {
  aws = fakeAws();
  serviceId = newServiceId();
});

afterEach(() => aws.restore());

describe('http-api handler', () => {
  it("accepts for a session of an approver role, recording the session's ARN and the reason from the body", async () => {
    const connection = aws.connect(serviceId, STRANGER);

    const response = await invoke(acceptEvent(serviceId, connection.endpointId));

    expect(response.status).toBe(200);
    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 1);
    expect((await getConnection(serviceId, connection.endpointId))?.decision).toMatchObject({
      outcome: 'accept',
      rule: 'approver',
      reason: 'ticket SEC-42, checked',
      decidedBy: SESSION_OF_APPROVER_ROLE,
    });
    expect(aws.events()).toMatchObject([{ eventType: 'accepted', endpointId: connection.endpointId }]);
  });

  it('refuses a caller whose role is not an approver with 403, calling nothing', async () => {
    const connection = aws.connect(serviceId, STRANGER);
    const event = acceptEvent(serviceId, connection.endpointId, (e) => {
      e.requestContext.authorizer = { iam: { userArn: 'arn:aws:sts::123456789012:assumed-role/Viewers/bob' } };
    });

    const response = await invoke(event);

    expect(response).toEqual({ status: 403, body: { error: { code: 'Forbidden', message: expect.stringContaining('Viewers/bob') } } });
    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointConnectionsCommand, 0);
  });

  it('fails closed (401) on a request that reached it without an authenticated identity', async () => {
    const connection = aws.connect(serviceId, STRANGER);
    const event = acceptEvent(serviceId, connection.endpointId, (e) => {
      delete e.requestContext.authorizer;
    });

    expect((await invoke(event)).status).toBe(401);
    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 0);
  });

  it('takes a JWT caller from its subject and groups: an accept for the approvers group, the queue for anyone', async () => {
    const connection = aws.connect(serviceId, STRANGER);
    const jwtRequest = fixture('http-api-list-connections-jwt.json') as Event & { headers: Record<string, string> };

    const accepted = await invoke(
      acceptEvent(serviceId, connection.endpointId, (e) => {
        // A JWT-authorized request carries its token, and API Gateway's view of its claims.
        (e.headers as Record<string, string>).authorization = jwtRequest.headers.authorization ?? '';
        e.requestContext.authorizer = jwtRequest.requestContext.authorizer;
      }),
    );
    const queue = await invoke(fixture('http-api-list-connections-jwt.json'));
    const admitted = fixture('http-api-list-connections-jwt.json') as Event & { queryStringParameters: Record<string, string> };
    admitted.queryStringParameters.state = String(accepted.body.state);
    admitted.rawQueryString = `state=${String(accepted.body.state)}&limit=10`;
    const admittedQueue = await invoke(admitted);

    const endpointIdsOf = (page: { body: Record<string, unknown> }) => (page.body.connections as { endpointId: string }[]).map((c) => c.endpointId);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ state: 'pending', decision: { decidedBy: '00u1abcd2EFGH3ijk4l5' } });
    expect(queue.status).toBe(200);
    expect(endpointIdsOf(queue)).not.toContain(connection.endpointId);
    expect(admittedQueue.status).toBe(200);
    expect(endpointIdsOf(admittedQueue)).toContain(connection.endpointId);
  });

  it('answers 502 when EC2 refuses the accept, records the failure, and a retry may succeed', async () => {
    const connection = aws.connect(serviceId, STRANGER);
    aws.overrides.unsuccessful = () => ({ Code: 'InvalidParameter', Message: 'internal detail from EC2' });

    const refused = await invoke(acceptEvent(serviceId, connection.endpointId));
    aws.overrides.unsuccessful = undefined;
    const retried = await invoke(acceptEvent(serviceId, connection.endpointId));

    expect(refused).toEqual({ status: 502, body: { error: { code: 'ActionFailed', message: expect.stringContaining('asking again is safe') } } });
    expect(JSON.stringify(refused.body)).not.toContain('internal detail');
    expect(retried.status).toBe(200);
    const history = (await getConnection(serviceId, connection.endpointId))?.history ?? [];
    expect(history.map((e) => e.type)).toContain('action-failed');
  });

  it('answers a failed read of EC2 with 502 and throttling with 503, saying nothing about internals', async () => {
    aws.ec2.on(DescribeVpcEndpointConnectionsCommand).rejects(new Error('socket hang up at 10.0.3.7:443'));
    const failed = await invoke(acceptEvent(serviceId, 'vpce-0a1b2c3d4e5f60718'));
    aws.ec2.on(DescribeVpcEndpointConnectionsCommand).rejects(Object.assign(new Error('Request limit exceeded.'), { name: 'RequestLimitExceeded' }));
    const throttled = await invoke(acceptEvent(serviceId, 'vpce-0a1b2c3d4e5f60718'));

    expect(failed.status).toBe(502);
    expect(failed.body).toEqual({ error: { code: 'ActionFailed', message: expect.stringContaining('nothing was changed') } });
    expect(JSON.stringify(failed.body)).not.toContain('10.0.3.7');
    expect(throttled.status).toBe(503);
    expect(throttled.body).toEqual({ error: { code: 'EC2Throttled', message: expect.any(String) } });
  });

  it('answers EC2 throttling on any route with 503 EC2Throttled and a Retry-After, saying nothing about internals', async () => {
    aws.ec2.on(DescribeVpcEndpointConnectionsCommand).rejects(requestLimitExceeded());
    aws.ec2.on(DescribeVpcEndpointServiceConfigurationsCommand).rejects(requestLimitExceeded());

    const plan = await invokeWithHeaders(routeEvent('POST', `/policies/${serviceId}/plan`, '/policies/{policyId}/plan', { policyId: serviceId }, { mode: 'manual' }));
    const services = await invokeWithHeaders(routeEvent('GET', '/services', '/services', undefined));

    for (const response of [plan, services]) {
      expect(response.status).toBe(503);
      expect(response.body).toEqual({ error: { code: 'EC2Throttled', message: expect.stringMatching(/EC2 is throttling .*RequestLimitExceeded.*try again shortly/) } });
      expect(response.headers['retry-after']).toBe('1');
    }
  });

  it('still answers an unexpected failure with a bare 500', async () => {
    aws.ec2.on(DescribeVpcEndpointServiceConfigurationsCommand).rejects(new Error('socket hang up at 10.0.3.7:443'));

    const response = await invoke(routeEvent('GET', '/services', '/services', undefined));

    expect(response).toEqual({ status: 500, body: { error: { code: 'InternalError', message: expect.stringContaining('request id') } } });
  });

  it('refuses a plan by a viewer with 403 saying only approvers plan, reading nothing from EC2', async () => {
    aws.connect(serviceId, STRANGER);
    const event = routeEvent('POST', `/policies/${serviceId}/plan`, '/policies/{policyId}/plan', { policyId: serviceId }, { mode: 'manual' });
    event.requestContext.authorizer = VIEWER;

    const response = await invoke(event);

    expect(response).toEqual({ status: 403, body: { error: { code: 'Forbidden', message: expect.stringMatching(/Viewers\/bob is not an approver: .*plan/) } } });
    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointConnectionsCommand, 0);
  });

  it('says nosniff on every response: a record, a refusal and an unknown route', async () => {
    const connection = aws.connect(serviceId, STRANGER);
    const accepted = await invokeWithHeaders(acceptEvent(serviceId, connection.endpointId));
    const refused = await invokeWithHeaders(acceptEvent(serviceId, connection.endpointId, (e) => (e.requestContext.authorizer = VIEWER)));
    const unknown = await invokeWithHeaders(routeEvent('GET', '/nowhere', '/nowhere', undefined));

    expect([accepted.status, refused.status, unknown.status]).toEqual([200, 403, 404]);
    for (const response of [accepted, refused, unknown]) expect(response.headers['x-content-type-options']).toBe('nosniff');
  });

  it("answers API Gateway's catch-all: /console/ sent to the console, with no caller; any other path 404 with nosniff", async () => {
    /** What API Gateway sends its $default route: no authorizer runs on it. */
    const caughtAll = (method: string, path: string) => {
      const event = routeEvent(method, path, path, undefined);
      event.routeKey = '$default';
      event.requestContext = { ...event.requestContext, routeKey: '$default', authorizer: undefined, http: { method, path } };
      return event;
    };
    const response = (await handler(caughtAll('GET', '/console/'), context)) as APIGatewayProxyStructuredResultV2;
    const unknown = await invokeWithHeaders(caughtAll('POST', '/services'));

    expect(response.statusCode).toBe(308);
    expect(new URL(String(response.headers?.location), 'https://api.example/console/').pathname).toBe('/console');
    expect(response.headers?.['x-content-type-options']).toBe('nosniff');
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'NotFound', message: 'no route for POST /services' } } });
    expect(unknown.headers['x-content-type-options']).toBe('nosniff');
  });

  it('decodes a base64-encoded body as API Gateway delivers non-text payloads', async () => {
    const connection = aws.connect(serviceId, STRANGER);
    const event = acceptEvent(serviceId, connection.endpointId, (e) => {
      e.body = Buffer.from(JSON.stringify({ reason: 'sent as bytes' })).toString('base64');
      e.isBase64Encoded = true;
    });

    const response = await invoke(event);

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ decision: { reason: 'sent as bytes' } });
  });

  it.each([
    ['a control character', 'approved\u0007 by ops'],
    ['an escape sequence', 'ok \u001b[31mred'],
    ['a bidi override', 'approved \u202egnp.exe'],
    ['a bidi isolate', 'ticket \u2067SEC-42\u2069'],
    ['a lone surrogate', 'broken \ud800 text'],
  ])('refuses a reason holding %s with 400, changing nothing', async (_, reason) => {
    const connection = aws.connect(serviceId, STRANGER);
    const event = acceptEvent(serviceId, connection.endpointId, (e) => (e.body = JSON.stringify({ reason })));

    const response = await invoke(event);

    expect(response).toEqual({ status: 400, body: { error: { code: 'InvalidRequest', message: expect.stringContaining('reason') } } });
    expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 0);
    expect(await getConnection(serviceId, connection.endpointId)).toBeUndefined();
  });

  it.each([
    ['no reason', acceptBody({}), 'invalid body: reason: is required'],
    ['a reason that is not text', acceptBody({ reason: 42 }), 'invalid body: reason: Invalid input: expected string, received number'],
    ['a blank reason', acceptBody({ reason: '   ' }), 'invalid body: reason: must say why'],
    ['an unknown field', acceptBody({ reason: 'ok', approvedBy: 'me' }), "invalid body: unknown field 'approvedBy' (the fields are reason)"],
    ['a limit that is not a number', listQuery({ limit: 'ten' }), 'invalid query: limit: Invalid input: expected number, received NaN'],
    ['a fractional limit', listQuery({ limit: '2.5' }), 'invalid query: limit: must be a whole number'],
    ['a limit over 100', listQuery({ limit: '101' }), 'invalid query: limit: must be at most 100'],
    ['an empty cursor and an unknown state', listQuery({ cursor: '', state: 'waiting' }), `invalid query: state: must be one of ${CONNECTION_STATES.join(', ')}; cursor: Too small: expected string to have >=1 characters`],
  ])('says exactly what is wrong with %s (400)', async (_, event, message) => {
    const response = await invoke(event(serviceId, aws.connect(serviceId, STRANGER).endpointId));

    expect(response).toEqual({ status: 400, body: { error: { code: 'InvalidRequest', message } } });
  });

  it('keeps a reason written on several lines, with tabs and any script', async () => {
    const connection = aws.connect(serviceId, STRANGER);
    const reason = 'ticket SEC-42\n\tchecked with the owner — 已确认 ✅';
    const event = acceptEvent(serviceId, connection.endpointId, (e) => (e.body = JSON.stringify({ reason })));

    const response = await invoke(event);

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ decision: { reason } });
  });

  describe('JWT groups: a group name only ever matches itself', () => {
    /** A JWT caller as API Gateway's JWT authorizer hands it over: the token in Authorization, its claims flattened. */
    function jwtCaller(groups: string[], options: { flattened?: string; token?: string } = {}) {
      const claims = { sub: 'mallory', iss: 'https://sso.example.com/', iat: 1795412034, exp: 1795415634, groups };
      const encode = (part: unknown) => Buffer.from(JSON.stringify(part)).toString('base64url');
      const token = options.token ?? `${encode({ alg: 'RS256' })}.${encode(claims)}.c2lnbmF0dXJl`;
      return (e: Event) => {
        (e.headers as Record<string, string>).authorization = `Bearer ${token}`;
        e.requestContext.authorizer = {
          jwt: { claims: { ...claims, iat: String(claims.iat), exp: String(claims.exp), groups: options.flattened ?? `[${groups.join(' ')}]` }, scopes: null },
        };
      };
    }

    it.each([
      ['a group whose name ends with a space and the approvers group name', ['not approvers']],
      ['a group whose name joins it to another with a comma', ['ops,approvers']],
      ['groups whose names merely contain it', ['approvers-readonly', 'xapprovers']],
    ])('refuses (403) %s, calling nothing', async (_, groups) => {
      const connection = aws.connect(serviceId, STRANGER);

      const response = await invoke(acceptEvent(serviceId, connection.endpointId, jwtCaller(groups)));

      expect(response.status).toBe(403);
      expect(aws.ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 0);
    });

    it('admits a member of the approvers group among groups whose names have spaces', async () => {
      const connection = aws.connect(serviceId, STRANGER);

      const response = await invoke(acceptEvent(serviceId, connection.endpointId, jwtCaller(['platform team', 'approvers', 'on call'])));

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ decision: { decidedBy: 'mallory' } });
    });

    it('grants no group from a flattened claim with several names when the token in Authorization is not the one behind the claims', async () => {
      const connection = aws.connect(serviceId, STRANGER);
      const otherToken = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzb21lb25lLWVsc2UiLCJncm91cHMiOlsibm90IiwiYXBwcm92ZXJzIl19.c2ln';

      const response = await invoke(acceptEvent(serviceId, connection.endpointId, jwtCaller(['not approvers'], { flattened: '[not approvers]', token: otherToken })));

      expect(response.status).toBe(403);
    });
  });

  it.each([
    ['an empty sort key', (service: string) => ({ pk: `CONN#${service}`, sk: '' })],
    ['an oversized sort key', (service: string) => ({ pk: `CONN#${service}`, sk: `EP#vpce-${'0'.repeat(2048)}` })],
  ])("answers a forged cursor with %s 400, not 500", async (_, forge) => {
    const listing = (path: string, routeKey: string, query: Record<string, string>, pathParameters?: Record<string, string>) => {
      const event = fixture('http-api-list-connections-jwt.json');
      return { ...event, routeKey, rawPath: path, queryStringParameters: query, ...(pathParameters ? { pathParameters } : {}) };
    };
    const cursor = Buffer.from(JSON.stringify(forge(serviceId))).toString('base64url');
    const queueCursor = Buffer.from(JSON.stringify({ ...forge(serviceId), gsi1pk: 'STATE#pendingAcceptance', gsi1sk: '' })).toString('base64url');

    const ofService = await invoke(listing(`/services/${serviceId}/connections`, 'GET /services/{serviceId}/connections', { cursor }, { serviceId }));
    const queue = await invoke(listing('/connections', 'GET /connections', { cursor: queueCursor }));

    for (const response of [ofService, queue]) {
      expect(response).toEqual({ status: 400, body: { error: { code: 'InvalidRequest', message: expect.stringContaining('cursor') } } });
    }
  });
});
