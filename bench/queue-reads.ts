import type { LocalStack } from '../test/e2e/local-stack';
import { LOCAL_VIEWER, signedClient } from '../test/e2e/approvals-client';
import type { ConnectionRecord } from '../lib/domain/connection';
import { runHereAsTheFunctions } from './local-runs';
import { summarize, type Summary } from './stats';

// The approver's queue with many records: GET /connections, signed, against the
// local stack's API (the real handler behind the local SigV4 gateway).

export interface QueueReadsResult {
  records: number;
  pageSize: number;
  firstPageMs: Summary;
  /** Every page, following the cursor, once. */
  fullPagination: { pages: number; ms: number; error?: string };
}

/** Writes `count` pendingAcceptance records straight into the stack's table, through the connection store. */
async function seed(stack: LocalStack, count: number): Promise<void> {
  runHereAsTheFunctions(await stack.health());
  // Loaded only now: the store reads its configuration when first loaded.
  const { putConnection } = await import('../lib/aws/connection-store');
  // Ids as EC2 writes them: the API refuses a cursor naming any other.
  const serviceId = 'vpce-svc-000000000000be0c1';
  const at = new Date().toISOString();
  for (let i = 0; i < count; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, (_, j) => {
        const endpointId = `vpce-${(i + j).toString(16).padStart(17, '0')}`;
        const record: ConnectionRecord = {
          serviceId,
          endpointId,
          ownerAccountId: '999988887777',
          region: 'us-east-1',
          state: 'pendingAcceptance',
          decision: { outcome: 'hold', acted: false, rule: 'onUnmatched:hold', reason: 'seeded', decidedBy: 'policy', decidedAt: at },
          createdAt: at,
          updatedAt: at,
          version: 1,
          history: [{ at, type: 'first-seen', state: 'pendingAcceptance', source: 'bench' }],
        };
        return putConnection(record, undefined);
      }),
    );
  }
}

export async function measureQueueReads(stack: LocalStack, records: number, samples: number): Promise<QueueReadsResult> {
  await stack.reset();
  await seed(stack, records);
  const api = signedClient(stack.baseUrl, LOCAL_VIEWER);
  const pageSize = 25;
  const read = async (cursor?: string) => {
    const response = await api.request('GET', '/connections', { query: { limit: String(pageSize), cursor } });
    if (response.status !== 200) throw new Error(`GET /connections answered ${response.status}: ${JSON.stringify(response.body)}`);
    return response.body as { connections: unknown[]; nextCursor: string | null };
  };
  await read(); // warm: first use of the handler's clients
  const firstPage: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    await read();
    firstPage.push(performance.now() - started);
  }
  const started = performance.now();
  let pages = 0;
  let seen = 0;
  let cursor: string | undefined;
  let error: string | undefined;
  try {
    do {
      const page = await read(cursor);
      pages++;
      seen += page.connections.length;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    if (seen !== records) error = `paginating the queue saw ${seen} connections, not ${records}`;
  } catch (failure) {
    error = `page ${pages + 1}: ${failure instanceof Error ? failure.message : String(failure)}`;
  }
  const ms = performance.now() - started;
  return { records, pageSize, firstPageMs: summarize(firstPage), fullPagination: { pages, ms, ...(error ? { error } : {}) } };
}
