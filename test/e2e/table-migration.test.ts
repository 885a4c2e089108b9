import { spawn } from 'node:child_process';
import { BatchWriteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { keys } from '../../lib/aws/table';
import type { ConnectionRecord } from '../../lib/domain/connection';
import { LOCAL_APPROVER, LOCAL_VIEWER, signedClient } from './approvals-client';
import { startLocalStack, type LocalStack } from './local-stack';

// A stage upgraded from the release before the connections were sharded: its table
// holds connections at their old keys (pk CONN#<serviceId>, the byState index's
// gsi1pk/gsi1sk), written here as that release wrote them. The stage runs with
// legacyConnections (LEGACY_CONNECTIONS=true) until scripts/migrate-table.ts, or the
// reconciler, has moved them all.

const HELD_ACCOUNT = '999988887777';
const REPO_ROOT = new URL('../..', import.meta.url).pathname;

let stack: LocalStack;
let approver: ApprovalsClient;
let viewer: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [{ account: '111122223333', label: 'acme' }], onUnmatched: 'hold' } },
    env: { LEGACY_CONNECTIONS: 'true' },
  });
  approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
  viewer = signedClient(stack.baseUrl, LOCAL_VIEWER);
});

afterAll(async () => {
  await stack?.stop();
});

/** Endpoints in EC2 whose Connects are lost, and their records written at the old keys, held, as the last release wrote them. */
async function legacyStage(count: number): Promise<{ serviceId: string; records: ConnectionRecord[] }> {
  await stack.faults({ dropNotifications: 1 });
  const { serviceId } = await stack.createService();
  const { vpcEndpointIds } = await stack.createEndpoints(serviceId, { ownerAccountId: HELD_ACCOUNT, count });
  await stack.faults({});
  const at = '2024-05-01T10:00:00.000Z';
  const records = vpcEndpointIds.map(
    (endpointId, i): ConnectionRecord => ({
      serviceId,
      endpointId,
      ownerAccountId: HELD_ACCOUNT,
      region: 'us-east-1',
      state: 'pendingAcceptance',
      decision: { outcome: 'hold', acted: false, rule: 'default:unmatched', reason: 'no rule matched', decidedBy: 'policy', decidedAt: at },
      createdAt: new Date(Date.parse(at) + i).toISOString(),
      updatedAt: at,
      version: 2,
      history: [
        { at, type: 'first-seen', state: 'pendingAcceptance', source: 'notification:Connect' },
        { at, type: 'decision', outcome: 'hold', acted: false, rule: 'default:unmatched', reason: 'no rule matched', decidedBy: 'policy' },
      ],
    }),
  );
  const { db, tableName } = await stack.table();
  const items = records.map((record) => ({
    ...keys.legacyConnection(serviceId, record.endpointId),
    gsi1pk: `STATE#${record.state}`,
    gsi1sk: `${record.createdAt}#${serviceId}#${record.endpointId}`,
    type: 'connection',
    ...record,
  }));
  for (let i = 0; i < items.length; i += 25) {
    await db.send(new BatchWriteCommand({ RequestItems: { [tableName]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }));
  }
  return { serviceId, records };
}

/** Every connection item of the table, by where it is: at an old key, or at its key now. */
async function connectionItems(): Promise<{ legacy: Record<string, unknown>[]; sharded: Record<string, unknown>[] }> {
  const { db, tableName } = await stack.table();
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: startKey, ConsistentRead: true }));
    items.push(...(page.Items ?? []).filter((item) => item.type === 'connection'));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const isLegacy = (item: Record<string, unknown>) => /^CONN#vpce-svc-[0-9a-f]+$/.test(String(item.pk));
  return { legacy: items.filter(isLegacy), sharded: items.filter((item) => !isLegacy(item)) };
}

/** scripts/migrate-table.ts against the stack's DynamoDB, as an operator runs it; `stopAfterFirstPage` kills it once it has moved one page. */
async function runMigrationScript(options: { stopAfterFirstPage?: boolean; recount?: boolean } = {}): Promise<{ code: number | null; output: string }> {
  const { dynamodbEndpoint, tableName } = await stack.health();
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/migrate-table.ts', '--table', tableName, ...(options.recount ? ['--recount'] : [])], {
    cwd: REPO_ROOT,
    env: { ...process.env, AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (options.stopAfterFirstPage && /moved \d+ connections so far/.test(output)) child.kill('SIGKILL');
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, output };
}

describe("a stage's table written before the connections were sharded", () => {
  it('serves its connections while they move, and the script moves them all, resumably and once, counted', async () => {
    const { serviceId, records } = await legacyStage(500);
    const [first, second] = records;

    // Readable before anything moved, and written to by an approver: that write moves it.
    const beforeMigration = await viewer.request('GET', `/services/${serviceId}/connections/${first?.endpointId}`);
    const rejected = await approver.request('POST', `/services/${serviceId}/connections/${second?.endpointId}/reject`, { body: { reason: 'not ours' } });
    const interrupted = await runMigrationScript({ stopAfterFirstPage: true });
    const partway = await connectionItems();
    const finished = await runMigrationScript();
    const again = await runMigrationScript({ recount: true });
    const after = await connectionItems();

    expect(beforeMigration.status).toBe(200);
    expect(beforeMigration.body).toMatchObject({ endpointId: first?.endpointId, state: 'pendingAcceptance', history: first?.history });
    expect(rejected.status).toBe(200);
    expect(interrupted.code).not.toBe(0);
    expect(partway.legacy.length).toBeGreaterThan(0);
    expect(partway.legacy.length).toBeLessThan(records.length - 1);
    expect(finished).toMatchObject({ code: 0, output: expect.stringContaining('migration done') });
    expect(again).toMatchObject({ code: 0, output: expect.stringContaining('counts rebuilt for 1 services') });
    expect(after.legacy).toEqual([]);
    // Each connection once, with its version and history (the rejected one moved by its write, then written).
    expect(after.sharded.map((item) => item.endpointId).sort()).toEqual(records.map((record) => record.endpointId).sort());
    const moved = after.sharded.find((item) => item.endpointId === first?.endpointId);
    expect(moved).toMatchObject({ version: 2, history: first?.history, pk: keys.connection(serviceId, first?.endpointId ?? '').pk });
    expect(after.sharded.find((item) => item.endpointId === second?.endpointId)).toMatchObject({ state: 'rejected', history: expect.arrayContaining(second?.history ?? []) });

    const services = await viewer.request('GET', '/services');
    const held: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await viewer.request('GET', `/services/${serviceId}/connections`, { query: { state: 'pendingAcceptance', limit: '100', cursor } });
      const body = page.body as { connections: { endpointId: string }[]; nextCursor: string | null };
      held.push(...body.connections.map((connection) => connection.endpointId));
      cursor = body.nextCursor ?? undefined;
    } while (cursor);
    expect((services.body as { services: { serviceId: string; connections: Record<string, number> }[] }).services).toContainEqual(
      expect.objectContaining({ serviceId, connections: { pendingAcceptance: records.length - 1, rejected: 1 } }),
    );
    expect(held.sort()).toEqual(records.filter((record) => record !== second).map((record) => record.endpointId).sort());
  });

  it('is moved by the reconciler too, a budget of its run at a time', async () => {
    await stack.reset();
    const { serviceId, records } = await legacyStage(120);

    const run = await stack.reconcile();
    const after = await connectionItems();

    expect(run.services.find((service) => service.serviceId === serviceId)).toMatchObject({ failed: 0 });
    expect(after.legacy).toEqual([]);
    expect(after.sharded.filter((item) => item.serviceId === serviceId)).toHaveLength(records.length);
  });
});
