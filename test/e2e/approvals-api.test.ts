import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTION_SHARDS, keys } from '../../lib/aws/table';
import type { ApprovalsClient } from '../../cli/api-client';
import { LOCAL_APPROVER, LOCAL_APPROVER_ARN, LOCAL_VIEWER, signedClient } from './approvals-client';
import { startLocalStack, type LocalStack, type OutboxMessage } from './local-stack';

// The approvals API through `npm start`, with requests signed as curl --aws-sigv4
// and the AWS SDKs sign them, verified by the local API Gateway.

const HOME = { providerAccountId: '000000000000', serviceRegion: 'us-east-1' };
const ALLOWED = '111122223333';
const DENIED = '444455556666';
const STRANGER = '999988887777';
const DEFAULT_POLICY = {
  allow: [{ account: ALLOWED, label: 'acme-prod' }],
  deny: [{ account: DENIED, label: 'offboarded' }],
  onUnmatched: 'hold',
};

interface ConnectionView {
  serviceId: string;
  endpointId: string;
  ownerAccountId: string;
  state: string;
  decision?: { outcome: string; acted: boolean; rule: string; reason: string; decidedBy: string };
  history: { type: string; decidedBy?: string; reason?: string }[];
}
interface ConnectionsPage {
  connections: ConnectionView[];
  nextCursor: string | null;
}

let stack: LocalStack;
let approver: ApprovalsClient;
let viewer: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({ policy: { default: DEFAULT_POLICY } });
  approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
  viewer = signedClient(stack.baseUrl, LOCAL_VIEWER);
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

/** True once no notification is waiting to be delivered or being handled. */
async function idle(): Promise<boolean> {
  const { deliveries } = await stack.health();
  return deliveries.scheduled === 0 && deliveries.running === 0;
}

/** Creates endpoints of accounts the policy holds, and waits until each is in the queue and the handler is done. */
async function heldEndpoints(serviceId: string, count: number): Promise<string[]> {
  const created = await Promise.all(Array.from({ length: count }, () => stack.createEndpoint(serviceId, { ownerAccountId: STRANGER })));
  const ids = created.map((e) => e.vpcEndpointId);
  await stack.waitFor(
    async () => {
      const queue = await viewer.request('GET', `/services/${serviceId}/connections`, { query: { state: 'pendingAcceptance' } });
      const held = (queue.body as ConnectionsPage).connections.filter((c) => c.decision?.outcome === 'hold');
      return held.length === count && (await idle());
    },
    { timeoutMs: 30_000, description: `${count} held connection(s) on ${serviceId}` },
  );
  return ids;
}

async function ec2State(serviceId: string, endpointId: string): Promise<string | undefined> {
  return (await stack.listEndpoints(serviceId)).find((e) => e.vpcEndpointId === endpointId)?.state;
}

async function acceptCalls(endpointId: string): Promise<number> {
  return (await stack.calls()).byEndpoint[endpointId]?.AcceptVpcEndpointConnections?.received ?? 0;
}

const eventsOf = (outbox: OutboxMessage[], eventType: string) =>
  outbox.filter((m) => (m.message as { eventType: string }).eventType === eventType);

const decide = (client: ApprovalsClient, action: 'accept' | 'reject' | 'revoke', serviceId: string, endpointId: string, reason = 'checked with the account owner') =>
  client.request('POST', `/services/${serviceId}/connections/${endpointId}/${action}`, { body: { reason } });

describe('the approver queue', () => {
  it('lists what waits for an approver, across services and per service, with counts by state', async () => {
    const { serviceId: first } = await stack.createService();
    const { serviceId: second } = await stack.createService();
    const [a] = await heldEndpoints(first, 1);
    const [b] = await heldEndpoints(second, 1);
    const allowed = await stack.createEndpoint(first, { ownerAccountId: ALLOWED });
    await stack.waitFor(async () => (await ec2State(first, allowed.vpcEndpointId)) === 'available' && (await idle()));

    // The table holds the last state a notification or action reported: pending, after the Accept.
    const queue = await viewer.request('GET', '/connections');
    const ofFirst = await viewer.request('GET', `/services/${first}/connections`);
    const admitted = await viewer.request('GET', `/services/${first}/connections`, { query: { state: 'pending' } });
    const services = await viewer.request('GET', '/services');

    expect(queue.status).toBe(200);
    expect((queue.body as ConnectionsPage).connections.map((c) => c.endpointId).sort()).toEqual([a, b].sort());
    expect((queue.body as ConnectionsPage).connections[0]?.decision).toMatchObject({ outcome: 'hold', decidedBy: 'policy' });
    expect((ofFirst.body as ConnectionsPage).connections.map((c) => c.endpointId).sort()).toEqual([a, allowed.vpcEndpointId].sort());
    expect((admitted.body as ConnectionsPage).connections.map((c) => c.endpointId)).toEqual([allowed.vpcEndpointId]);
    expect(services.body).toEqual({
      services: expect.arrayContaining([
        // Where each lives: the stack's own account and Region.
        { serviceId: first, ...HOME, connections: { pendingAcceptance: 1, pending: 1 }, policy: { policyId: 'default', version: expect.any(Number), valid: true } },
        { serviceId: second, ...HOME, connections: { pendingAcceptance: 1 }, policy: { policyId: 'default', version: expect.any(Number), valid: true } },
      ]),
    });
  });

  it('pages through the queue with an opaque cursor, each connection exactly once', async () => {
    const { serviceId } = await stack.createService();
    const ids = await heldEndpoints(serviceId, 5);

    for (const [path, query] of [
      ['/connections', {}],
      [`/services/${serviceId}/connections`, { state: 'pendingAcceptance' }],
    ] as const) {
      const seen: string[] = [];
      const pageSizes: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await viewer.request('GET', path, { query: { ...query, limit: '2', cursor } });
        expect(page.status).toBe(200);
        const body = page.body as ConnectionsPage;
        pageSizes.push(body.connections.length);
        seen.push(...body.connections.map((c) => c.endpointId));
        cursor = body.nextCursor ?? undefined;
      } while (cursor);

      expect(pageSizes.slice(0, 2)).toEqual([2, 2]);
      expect(seen.sort()).toEqual([...ids].sort());
    }
  });

  it("lists one service's connections in one state with one Query per shard and one BatchGet, however many records the service has", async () => {
    const { serviceId } = await stack.createService();
    const { db, tableName } = await stack.table();
    const at = new Date().toISOString();
    // 600 records written as the handler writes them: 599 available, and one deleted whose endpoint id sorts last.
    const ids = Array.from({ length: 600 }, (_, i) => `vpce-${i.toString(16).padStart(17, '0')}`);
    const deleted = ids[ids.length - 1] ?? '';
    const items = ids.map((endpointId) => {
      const state = endpointId === deleted ? 'deleted' : 'available';
      return {
        ...keys.connection(serviceId, endpointId),
        ...keys.byStateShard(state, at, serviceId, endpointId),
        type: 'connection',
        serviceId,
        endpointId,
        ownerAccountId: ALLOWED,
        region: 'us-east-1',
        state,
        createdAt: at,
        updatedAt: at,
        version: 1,
        history: [{ at, type: 'first-seen', state, source: 'test' }],
      };
    });
    for (let i = 0; i < items.length; i += 25) {
      await db.send(new BatchWriteCommand({ RequestItems: { [tableName]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }));
    }
    const readCalls = async () => {
      const { byOperation } = (await stack.request('GET', '/local/dynamodb-calls')).body as { byOperation: Record<string, number> };
      return (byOperation.Query ?? 0) + (byOperation.GetItem ?? 0) + (byOperation.BatchGetItem ?? 0) + (byOperation.Scan ?? 0);
    };

    const before = await readCalls();
    const onlyDeleted = await viewer.request('GET', `/services/${serviceId}/connections`, { query: { state: 'deleted', limit: '1' } });
    const afterDeleted = await readCalls();
    const available = await viewer.request('GET', `/services/${serviceId}/connections`, { query: { state: 'available', limit: '25' } });
    const afterAvailable = await readCalls();

    expect(onlyDeleted.status).toBe(200);
    expect((onlyDeleted.body as ConnectionsPage).connections.map((c) => c.endpointId)).toEqual([deleted]);
    expect(afterDeleted - before).toBeLessThanOrEqual(CONNECTION_SHARDS + 1);
    expect((available.body as ConnectionsPage).connections).toHaveLength(25);
    expect((available.body as ConnectionsPage).connections.every((c) => c.state === 'available')).toBe(true);
    expect((available.body as ConnectionsPage).nextCursor).toEqual(expect.any(String));
    expect(afterAvailable - afterDeleted).toBeLessThanOrEqual(CONNECTION_SHARDS + 1);
  });

  it('refuses a cursor it did not issue, or one from another listing', async () => {
    const { serviceId } = await stack.createService();
    await heldEndpoints(serviceId, 3);
    const acrossServices = await viewer.request('GET', '/connections', { query: { limit: '1' } });
    const cursor = (acrossServices.body as ConnectionsPage).nextCursor ?? '';

    const forged = await viewer.request('GET', '/connections', { query: { cursor: 'bm90LWEtY3Vyc29y' } });
    const elsewhere = await viewer.request('GET', `/services/${serviceId}/connections`, { query: { cursor } });

    expect(cursor).not.toBe('');
    for (const response of [forged, elsewhere]) {
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ error: { code: 'InvalidRequest', message: expect.stringContaining('cursor') } });
    }
  });

  it('shows one connection with its full history, and 404 for one it does not know', async () => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);

    const known = await viewer.request('GET', `/services/${serviceId}/connections/${endpointId}`);
    const unknown = await viewer.request('GET', `/services/${serviceId}/connections/vpce-0123456789abcdef0`);

    expect(known.status).toBe(200);
    expect(known.body).toMatchObject({ serviceId, endpointId, ownerAccountId: STRANGER, state: 'pendingAcceptance' });
    expect((known.body as ConnectionView).history.map((e) => e.type)).toEqual(['first-seen', 'decision']);
    expect(known.body).not.toHaveProperty('outbox');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: { code: 'NotFound', message: expect.stringContaining('vpce-0123456789abcdef0') } });
  });
});

describe('accepting, rejecting and revoking', () => {
  it('accepts a held connection through EC2, recording the approver and the reason, at the path the approval-needed event gave', async () => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);
    const [needed] = eventsOf(await stack.outbox(), 'approval-needed');
    const acceptPath = (needed?.message as { actions: { accept: string } }).actions.accept;

    const response = await approver.request('POST', acceptPath, { body: { reason: 'ticket SEC-42' } });

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      endpointId,
      state: 'pending',
      decision: { outcome: 'accept', acted: true, rule: 'approver', reason: 'ticket SEC-42', decidedBy: LOCAL_APPROVER_ARN },
    });
    await stack.waitFor(async () => (await ec2State(serviceId, endpointId)) === 'available');
    expect(await acceptCalls(endpointId)).toBe(1);
    const accepted = eventsOf(await stack.outbox(), 'accepted');
    expect(accepted.map((m) => m.message)).toMatchObject([{ endpointId, decision: { decidedBy: LOCAL_APPROVER_ARN, reason: 'ticket SEC-42' } }]);
    expect(accepted[0]?.messageAttributes.serviceId?.StringValue).toBe(serviceId);
  });

  it('rejects a held connection, and refuses to accept it afterwards with 409', async () => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);

    const rejected = await decide(approver, 'reject', serviceId, endpointId, 'unknown customer');
    const acceptedAfter = await decide(approver, 'accept', serviceId, endpointId);

    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({ state: 'rejected', decision: { outcome: 'reject', reason: 'unknown customer', decidedBy: LOCAL_APPROVER_ARN } });
    expect(await ec2State(serviceId, endpointId)).toBe('rejected');
    expect(acceptedAfter.status).toBe(409);
    expect(acceptedAfter.body).toEqual({ error: { code: 'Conflict', message: expect.stringContaining('rejected') } });
    expect(await acceptCalls(endpointId)).toBe(0);
    expect(eventsOf(await stack.outbox(), 'rejected')).toHaveLength(1);
  });

  it('revokes an available connection with revoke, and will neither reject nor accept one that is already admitted', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: ALLOWED });
    await stack.waitFor(async () => (await ec2State(serviceId, endpointId)) === 'available' && (await idle()));

    const acceptAgain = await decide(approver, 'accept', serviceId, endpointId);
    const rejected = await decide(approver, 'reject', serviceId, endpointId, 'contract ended');
    const revoked = await decide(approver, 'revoke', serviceId, endpointId, 'contract ended');

    expect(acceptAgain.status).toBe(409);
    expect(await acceptCalls(endpointId)).toBe(1); // the policy's, none from the API
    expect(rejected.status).toBe(409);
    expect(rejected.body).toEqual({ error: { code: 'Conflict', message: expect.stringMatching(/accepted by policy at .*revoke/) } });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ state: 'rejected', decision: { outcome: 'reject', reason: 'contract ended', decidedBy: LOCAL_APPROVER_ARN } });
    expect(await ec2State(serviceId, endpointId)).toBe('rejected');
  });

  it('answers 404 for a connection neither EC2 nor the table knows', async () => {
    const { serviceId } = await stack.createService();

    const response = await decide(approver, 'accept', serviceId, 'vpce-0123456789abcdef0');

    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: { code: 'NotFound', message: expect.any(String) } });
  });

  it('gives two simultaneous approvals one 200 and one 409, and EC2 a single Accept', async () => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);

    const responses = await Promise.all([decide(approver, 'accept', serviceId, endpointId), decide(approver, 'accept', serviceId, endpointId)]);

    expect(responses.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(responses.find((r) => r.status === 409)?.body).toEqual({ error: { code: 'Conflict', message: expect.any(String) } });
    await stack.waitFor(async () => (await ec2State(serviceId, endpointId)) === 'available' && (await idle()));
    expect(await acceptCalls(endpointId)).toBe(1);
    const record = await viewer.request('GET', `/services/${serviceId}/connections/${endpointId}`);
    expect((record.body as ConnectionView).history.filter((e) => e.type === 'decision' && e.decidedBy === LOCAL_APPROVER_ARN)).toHaveLength(1);
    expect(eventsOf(await stack.outbox(), 'accepted')).toHaveLength(1);
  });
});

describe('policies', () => {
  it('changes a policy only with the current version in If-Match, keeps every version and announces the change', async () => {
    const current = await viewer.request('GET', '/policies/default');
    const version = (current.body as { version: number }).version;
    const next = { ...DEFAULT_POLICY, allow: [...DEFAULT_POLICY.allow, { account: STRANGER, label: 'new-customer' }] };

    const withoutIfMatch = await approver.request('PUT', '/policies/default', { body: next });
    const stale = await approver.request('PUT', '/policies/default', { body: next, headers: { 'if-match': `"${version - 1}"` } });
    const accepted = await approver.request('PUT', '/policies/default', { body: next, headers: { 'if-match': `"${version}"` } });
    const replayed = await approver.request('PUT', '/policies/default', { body: next, headers: { 'if-match': `"${version}"` } });
    const versions = await viewer.request('GET', '/policies/default/versions');

    expect(current.status).toBe(200);
    expect(current.headers.get('etag')).toBe(`"${version}"`);
    expect(withoutIfMatch.status).toBe(428);
    expect(stale.status).toBe(412);
    expect(stale.body).toEqual({ error: { code: 'PreconditionFailed', message: expect.stringContaining('version') } });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ policyId: 'default', version: version + 1, createdBy: LOCAL_APPROVER_ARN, policy: next });
    expect(accepted.headers.get('etag')).toBe(`"${version + 1}"`);
    expect(replayed.status).toBe(412);
    expect((versions.body as { versions: { version: number; createdBy: string }[] }).versions.map((v) => [v.version, v.createdBy])).toEqual([
      [version + 1, LOCAL_APPROVER_ARN],
      [version, 'local-policy-file'],
    ]);
    const changed = eventsOf(await stack.outbox(), 'policy-changed');
    expect(changed.map((m) => m.message)).toMatchObject([{ policyId: 'default', version: version + 1, changedBy: LOCAL_APPROVER_ARN }]);
    expect(changed[0]?.messageAttributes).toEqual({
      eventType: { DataType: 'String', StringValue: 'policy-changed' },
      serviceId: { DataType: 'String', StringValue: 'default' },
    });
  });

  it("creates a service's first policy without If-Match, and refuses an invalid one naming the field, writing nothing", async () => {
    const { serviceId } = await stack.createService();

    const invalid = await approver.request('PUT', `/policies/${serviceId}`, { body: { allow: [{ account: 'acme' }] } });
    const missing = await viewer.request('GET', `/policies/${serviceId}`);
    const created = await approver.request('PUT', `/policies/${serviceId}`, { body: { mode: 'manual' } });

    expect(invalid.status).toBe(400);
    expect(invalid.body).toEqual({ error: { code: 'InvalidRequest', message: expect.stringContaining('allow[0].account') } });
    expect(missing.status).toBe(404);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ policyId: serviceId, version: 1, policy: { mode: 'manual' } });
  });

  it('evaluates a hypothetical request and explains the decision, changing nothing', async () => {
    const { serviceId } = await stack.createService();
    const before = await stack.outbox();
    const evaluate = (accountId: string) =>
      viewer.request('POST', `/policies/${serviceId}/evaluate`, { body: { accountId, region: 'us-east-1' } });

    const [allowed, denied, unmatched] = await Promise.all([evaluate(ALLOWED), evaluate(DENIED), evaluate(STRANGER)]);

    expect(allowed.status).toBe(200);
    expect(allowed.body).toMatchObject({
      policyId: 'default',
      evaluation: { outcome: 'accept', rule: 'allow:acme-prod', reason: `account ${ALLOWED} matched allow entry 'acme-prod'` },
    });
    expect(denied.body).toMatchObject({ evaluation: { outcome: 'reject', rule: 'deny:offboarded' } });
    expect(unmatched.body).toMatchObject({ evaluation: { outcome: 'hold', rule: 'onUnmatched:hold' } });
    expect(await stack.outbox()).toEqual(before);
    expect((await stack.calls()).byAction.AcceptVpcEndpointConnections).toBeUndefined();
  });
});

describe('who may call', () => {
  it('answers an unsigned request 401 and a bad signature 403', async () => {
    const unsigned = await stack.request('GET', '/connections');
    const wrongSecret = await signedClient(stack.baseUrl, { accessKeyId: 'LOCALVIEWER', secretAccessKey: 'guessed' }).request('GET', '/connections');
    const unknownKey = await signedClient(stack.baseUrl, { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x' }).request('GET', '/connections');

    expect(unsigned.status).toBe(401);
    expect(unsigned.body).toEqual({ error: { code: 'Unauthorized', message: expect.stringContaining('sign') } });
    for (const response of [wrongSecret, unknownKey]) {
      expect(response.status).toBe(403);
      expect(response.body).toEqual({ error: { code: 'InvalidSignature', message: expect.any(String) } });
    }
  });

  it('refuses a signed request whose body was changed after signing', async () => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);
    const url = new URL(`${stack.baseUrl}/services/${serviceId}/connections/${endpointId}/accept`);
    const signer = new SignatureV4({ service: 'execute-api', region: 'us-east-1', credentials: LOCAL_APPROVER, sha256: Hash.bind(null, 'sha256') });
    const signed = await signer.sign({
      method: 'POST',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      headers: { host: url.host, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'what I signed' }),
    });
    const { host: _host, ...headers } = signed.headers;

    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ reason: 'what I sent' }) });

    expect(response.status).toBe(403);
    expect(await ec2State(serviceId, endpointId)).toBe('pendingAcceptance');
  });

  it('lets a viewer read but not accept, reject or change policies (403), and nothing changes', async () => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);

    const read = await viewer.request('GET', `/services/${serviceId}/connections/${endpointId}`);
    const accept = await decide(viewer, 'accept', serviceId, endpointId);
    const reject = await decide(viewer, 'reject', serviceId, endpointId);
    const policy = await viewer.request('PUT', `/policies/${serviceId}`, { body: { mode: 'manual' } });

    expect(read.status).toBe(200);
    for (const response of [accept, reject, policy]) {
      expect(response.status).toBe(403);
      expect(response.body).toEqual({ error: { code: 'Forbidden', message: expect.stringContaining('local-viewer is not an approver') } });
    }
    expect(await ec2State(serviceId, endpointId)).toBe('pendingAcceptance');
    expect((await stack.calls()).byEndpoint[endpointId]?.RejectVpcEndpointConnections).toBeUndefined();
    expect((await viewer.request('GET', `/policies/${serviceId}`)).status).toBe(404);
  });

  it('accepts the same signature from curl --aws-sigv4', async () => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);
    const curl = (...args: string[]) =>
      promisify(execFile)('curl', ['-s', '-w', '\n%{http_code}', '--aws-sigv4', 'aws:amz:us-east-1:execute-api', ...args]);

    const queue = await curl('--user', 'LOCALVIEWER:local-viewer-secret', `${stack.baseUrl}/connections?limit=10`);
    const accepted = await curl(
      '--user',
      'LOCALAPPROVER:local-approver-secret',
      '-X',
      'POST',
      '-H',
      'content-type: application/json',
      '-d',
      '{"reason": "approved from the shell"}',
      `${stack.baseUrl}/services/${serviceId}/connections/${endpointId}/accept`,
    );

    expect(queue.stdout.split('\n').at(-1)).toBe('200');
    expect(queue.stdout).toContain(endpointId);
    expect(accepted.stdout.split('\n').at(-1)).toBe('200');
    expect(await acceptCalls(endpointId)).toBe(1);
  });
});

describe('input', () => {
  it.each([
    ['an unknown field', { reason: 'ok', approvedBy: 'me' }, 'application/json', 400, 'approvedBy'],
    ['malformed JSON', '{"reason": ', 'application/json', 400, 'not JSON'],
    ['no reason', {}, 'application/json', 400, 'reason'],
    ['the wrong content type', 'reason=ok', 'application/x-www-form-urlencoded', 415, 'application/json'],
    ['a body over 16 KiB', { reason: 'x'.repeat(17 * 1024) }, 'application/json', 413, '16384'],
  ])('refuses %s and changes nothing', async (_, body, contentType, status, mentions) => {
    const { serviceId } = await stack.createService();
    const [endpointId = ''] = await heldEndpoints(serviceId, 1);

    const response = await approver.request('POST', `/services/${serviceId}/connections/${endpointId}/accept`, {
      body,
      headers: { 'content-type': contentType },
    });

    expect(response.status).toBe(status);
    expect(response.body).toEqual({ error: { code: expect.any(String), message: expect.stringContaining(mentions) } });
    expect(await ec2State(serviceId, endpointId)).toBe('pendingAcceptance');
    expect(await acceptCalls(endpointId)).toBe(0);
  });

  it.each([
    ['a service id that is not vpce-svc-…', 'GET', '/services/svc-123/connections', {}, 'serviceId'],
    ['an endpoint id that is not vpce-…', 'POST', '/services/vpce-svc-0123456789abcdef0/connections/vpce-XYZ/accept', {}, 'endpointId'],
    ['a policy id that is neither a service id, default nor a name', 'GET', '/policies/Every_Thing', {}, 'policyId'],
    ['an unknown state', 'GET', '/connections', { state: 'waiting' }, 'state'],
    ['a limit out of range', 'GET', '/connections', { limit: '0' }, 'limit'],
    ['an unknown query parameter', 'GET', '/connections', { owner: ALLOWED }, 'owner'],
  ])('refuses %s with 400, naming it', async (_, method, path, query, mentions) => {
    const response = await approver.request(method, path, { query, ...(method === 'POST' ? { body: { reason: 'ok' } } : {}) });

    expect(response.status).toBe(400);
    expect(response.body).toEqual({ error: { code: 'InvalidRequest', message: expect.stringContaining(mentions) } });
  });

  it('answers 404 with the error shape for a route that does not exist', async () => {
    const response = await approver.request('DELETE', '/connections');

    expect(response.status).toBe(404);
    expect(response.body).toEqual({ error: { code: 'NotFound', message: expect.any(String) } });
  });
});
