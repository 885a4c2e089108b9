import { readFileSync } from 'node:fs';
import { DescribeVpcEndpointConnectionsCommand } from '@aws-sdk/client-ec2';
import type { APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { getLatestPolicyVersion } from '../../lib/aws/policy-store';
import { awsPorts } from '../../lib/aws/ports';
import { policyInForce } from '../../lib/domain/policy';
import { publishStrandedPolicyEvents } from '../../lib/policy-events';
import { fakeAws } from '../support/fake-ec2';
import { storeOldPolicyVersion } from '../support/table-fixtures';

// The policy routes of the approvals handler, fed API Gateway v2 events as Lambda
// receives them, against mocked EC2 and SNS and an embedded DynamoDB.

// Configuration is read at cold start, so it is set before the handler is imported.
const MANAGED = vi.hoisted(() => {
  const hex = () => Math.floor(Math.random() * 16).toString(16);
  const ids = Array.from({ length: 30 }, () => `vpce-svc-${Array.from({ length: 17 }, hex).join('')}`);
  process.env.APPROVER_PRINCIPALS = 'arn:aws:iam::123456789012:role/Approvers';
  process.env.MANAGED_SERVICE_IDS = ids.join(',');
  return ids;
});
const { handler } = await import('../../handlers/http-api');

const UNMANAGED = 'vpce-svc-0fedcba9876543210';
const ALLOWED = '111122223333';
const context = { functionName: 'approvals-api', awsRequestId: 'test-request', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;

let nextService = 0;
function newManagedService(): string {
  const id = MANAGED[nextService++];
  if (!id) throw new Error('add ids to MANAGED: every test takes a service of its own');
  return id;
}

interface Call {
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, string>;
}

/** The approver's accept event from events/, turned into a call of a policy route. */
async function call({ method, path, body, headers = {}, query }: Call): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  const event = JSON.parse(readFileSync(new URL('../../events/http-api-accept.json', import.meta.url), 'utf8')) as Record<string, unknown> & {
    headers: Record<string, string>;
  };
  const [, , policyId = '', suffix = ''] = path.split('/');
  event.routeKey = `${method} /policies/{policyId}${suffix ? `/${suffix}` : ''}`;
  event.rawPath = path;
  event.pathParameters = { policyId };
  event.queryStringParameters = query;
  event.headers = { ...event.headers, ...headers };
  event.body = body === undefined ? undefined : JSON.stringify(body);
  const response = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode ?? 0, body: JSON.parse(response.body ?? '{}') as Record<string, unknown>, headers: response.headers ?? {} };
}

const put = (policyId: string, body: unknown, ifMatch?: string) =>
  call({ method: 'PUT', path: `/policies/${policyId}`, body, headers: ifMatch === undefined ? {} : { 'if-match': ifMatch } });
const versionsOf = async (policyId: string) =>
  ((await call({ method: 'GET', path: `/policies/${policyId}/versions` })).body.versions as { version: number }[]).map((v) => v.version);

const storeRaw = storeOldPolicyVersion;

let aws: ReturnType<typeof fakeAws>;
beforeEach(() => {
  aws = fakeAws();
});
afterEach(() => aws.restore());

describe('If-Match on PUT /policies/{policyId}', () => {
  it.each([
    ['an unquoted made-up value', 'stale-version-0'],
    ['an unquoted version number', '1'],
    ['a weak entity tag of the current version', 'W/"1"'],
    ['a stale version', '"0"'],
    ['an empty value', ''],
  ])('answers 412, not 400, to %s, and writes nothing', async (_, ifMatch) => {
    const policyId = newManagedService();
    await put(policyId, { mode: 'manual' });

    const response = await put(policyId, { mode: 'observe' }, ifMatch);

    expect(response).toEqual({ status: 412, headers: expect.anything(), body: { error: { code: 'PreconditionFailed', message: expect.stringContaining('"1"') } } });
    expect(await versionsOf(policyId)).toEqual([1]);
  });

  it('replaces the current version named in a list, or any current version with *', async () => {
    const policyId = newManagedService();
    await put(policyId, { mode: 'manual' });

    const listed = await put(policyId, { mode: 'observe' }, '"7", "1"');
    const any = await put(policyId, { mode: 'auto' }, '*');

    expect([listed.status, listed.body.version, listed.headers.etag]).toEqual([200, 2, '"2"']);
    expect([any.status, any.body.version, any.headers.etag]).toEqual([200, 3, '"3"']);
  });

  it('answers 412 to If-Match on a policy that has no version yet, * included', async () => {
    const policyId = newManagedService();

    expect((await put(policyId, { mode: 'manual' }, '*')).status).toBe(412);
    expect((await put(policyId, { mode: 'manual' }, '"0"')).status).toBe(412);
    expect((await call({ method: 'GET', path: `/policies/${policyId}` })).status).toBe(404);
  });
});

describe('a PUT of the current document', () => {
  it('writes no new version and announces nothing: 200 with the current version', async () => {
    const policyId = newManagedService();
    const document = { allow: [{ account: ALLOWED, label: 'acme' }], onUnmatched: 'hold' };
    await put(policyId, document);
    const announced = aws.events().length;

    const again = await put(policyId, document, '"1"');
    // The same policy spelled differently (defaults written out, other key order) is the same policy.
    const spelledOut = await put(policyId, { onUnmatched: 'hold', mode: 'auto', deny: [], allow: [{ label: 'acme', account: ALLOWED }] }, '"1"');

    expect([again.status, again.body.version, again.headers.etag]).toEqual([200, 1, '"1"']);
    expect([spelledOut.status, spelledOut.body.version]).toEqual([200, 1]);
    expect(await versionsOf(policyId)).toEqual([1]);
    expect(aws.events()).toHaveLength(announced);
  });
});

describe('a stored policy that no longer validates', () => {
  it('is shown as invalid with the reason, evaluates as held, and a PUT with the right If-Match replaces it', async () => {
    const policyId = newManagedService();
    await storeRaw(policyId, 1, JSON.stringify({ allow: [{ account: 'acme' }] }));

    const got = await call({ method: 'GET', path: `/policies/${policyId}` });
    const versions = await call({ method: 'GET', path: `/policies/${policyId}/versions` });
    const evaluated = await call({ method: 'POST', path: `/policies/${policyId}/evaluate`, body: { accountId: ALLOWED, region: 'us-east-1' } });
    const replaced = await put(policyId, { allow: [{ account: ALLOWED }] }, '"1"');

    expect(got).toMatchObject({ status: 200, headers: { etag: '"1"' }, body: { version: 1, valid: false, invalidReason: expect.stringContaining('allow[0].account'), policy: { allow: [{ account: 'acme' }] } } });
    expect(versions).toMatchObject({ status: 200, body: { versions: [{ version: 1, valid: false }] } });
    expect(evaluated).toMatchObject({ status: 200, body: { policyId, version: 1, evaluation: { outcome: 'hold', act: false, rule: 'policy-unreadable' } } });
    expect(replaced).toMatchObject({ status: 200, body: { version: 2, valid: true, policy: { allow: [{ account: ALLOWED }] } } });
    expect(aws.events()).toMatchObject([{ eventType: 'policy-changed', policyId, version: 2 }]);
  });

  it('stays unreadable to the engine, which decides nothing by it (fail closed)', async () => {
    const policyId = newManagedService();
    await storeRaw(policyId, 1, '{"mode": "auto", "allow": [{"account": "*"}], "onUnmatched": "sometimes"}');

    const latest = await getLatestPolicyVersion(policyId);
    expect(policyInForce(policyId, () => latest)).toMatchObject({ kind: 'unreadable', policyId, version: 1 });
  });

  it('is shown, not a 400 or a 500, when the stored document is not even JSON', async () => {
    const policyId = newManagedService();
    await storeRaw(policyId, 1, '{"mode": "auto", ');

    const got = await call({ method: 'GET', path: `/policies/${policyId}` });
    const replaced = await put(policyId, { mode: 'manual' }, '"1"');

    expect(got).toMatchObject({ status: 200, body: { version: 1, valid: false, policy: null, invalidReason: expect.stringContaining('not JSON') } });
    expect(replaced).toMatchObject({ status: 200, body: { version: 2, valid: true } });
  });
});

describe('policy-changed through the outbox', () => {
  it('answers success when the version was saved but SNS failed, and the reconciler hook publishes it later, once', async () => {
    const policyId = newManagedService();
    aws.overrides.failingPublishes = 1;

    const ports = awsPorts();
    const read = async () => new Map([[policyId, await ports.policies.latest(policyId)]]);
    const aMinuteLater = { ...ports, clock: { now: () => new Date(Date.now() + 60_000) } };

    const saved = await put(policyId, { mode: 'manual' });
    const tooSoon = await publishStrandedPolicyEvents(await read(), ports);
    const later = await publishStrandedPolicyEvents(await read(), aMinuteLater);
    const again = await publishStrandedPolicyEvents(await read(), aMinuteLater);

    expect(saved).toMatchObject({ status: 201, body: { version: 1 } });
    expect([tooSoon.published, later.published, again.published]).toEqual([0, 1, 0]);
    expect(aws.events()).toMatchObject([{ eventType: 'policy-changed', policyId, version: 1 }]);
  });

  it('has the next writer publish what a failed publish left, first and in order', async () => {
    const policyId = newManagedService();
    aws.overrides.failingPublishes = 1;
    await put(policyId, { mode: 'manual' });

    const next = await put(policyId, { mode: 'observe' }, '"1"');

    expect(next.status).toBe(200);
    expect(aws.events().map((e) => [e.eventType, e.version])).toEqual([
      ['policy-changed', 1],
      ['policy-changed', 2],
    ]);
  });
});

describe('GET /policies/{policyId}/versions', () => {
  it('pages newest first with limit and an opaque cursor, and refuses a cursor it did not issue', async () => {
    const policyId = newManagedService();
    await put(policyId, { mode: 'manual' });
    for (const [version, mode] of [[1, 'observe'], [2, 'auto'], [3, 'manual'], [4, 'observe']] as const) await put(policyId, { mode }, `"${version}"`);

    const pages: number[][] = [];
    let cursor: string | undefined;
    do {
      const page = await call({ method: 'GET', path: `/policies/${policyId}/versions`, query: { limit: '2', ...(cursor ? { cursor } : {}) } });
      expect(page.status).toBe(200);
      pages.push((page.body.versions as { version: number }[]).map((v) => v.version));
      cursor = (page.body.nextCursor as string | null) ?? undefined;
    } while (cursor);
    const forged = Buffer.from(JSON.stringify({ pk: `POLICY#${policyId}`, sk: '' })).toString('base64url');
    const refused = await call({ method: 'GET', path: `/policies/${policyId}/versions`, query: { cursor: forged } });

    expect(pages.flat()).toEqual([5, 4, 3, 2, 1]);
    expect(pages[0]).toEqual([5, 4]);
    expect(refused).toMatchObject({ status: 400, body: { error: { code: 'InvalidRequest', message: expect.stringContaining('cursor') } } });
  });
});

describe('POST /policies/{policyId}/evaluate', () => {
  it('answers 404 for a service this stage does not manage, reading nothing from EC2', async () => {
    const response = await call({ method: 'POST', path: `/policies/${UNMANAGED}/evaluate`, body: { accountId: ALLOWED, region: 'us-east-1' } });

    expect(response).toMatchObject({ status: 404, body: { error: { code: 'NotFound', message: expect.stringContaining('not managed') } } });
    expect(aws.ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointConnectionsCommand, 0);
  });
});
