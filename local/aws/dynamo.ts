import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';
import { tableDefinition } from '../../lib/aws/table';
import { tsWorker } from '../ts-worker';
import type { MeterUsage } from './dynamo-metering';
import type { WorkerQuestion } from './dynalite-worker';

const POLL_MS = 10;
const TABLE_WAIT_MS = 10_000;

/** What GET /local/dynamodb-calls reports: requests by operation, and the units and throttling the metering saw. */
export interface DynamoUsage {
  /** Requests dynalite has received since it started, by operation. */
  requests: Record<string, number>;
  usage: MeterUsage;
}

export interface LocalDynamo {
  /** The URL to hand the SDK as its DynamoDB endpoint. */
  endpoint: string;
  /** Deletes the table, if any, and creates it empty. */
  resetTable(): Promise<void>;
  /** Requests, units and throttling since dynalite started. */
  usage(): Promise<DynamoUsage>;
  /** Turns DynamoDB's per-partition limits on or off (on at start); every partition starts full again. */
  setPartitionLimits(on: boolean): Promise<void>;
  /**
   * The dynamoUnavailable fault: while on, every connection to `endpoint` is cut, new and
   * open, before dynalite sees a request (local/aws/dynamo-gate.ts). In force when this returns.
   */
  setUnavailable(on: boolean): void;
  close(): Promise<void>;
}

/** Starts dynalite, in a worker thread, on an ephemeral loopback port and creates the table in it. */
export async function startDynamo(tableName: string, credentials: { accessKeyId: string; secretAccessKey: string }): Promise<LocalDynamo> {
  const unavailable = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const worker = tsWorker(new URL('./dynalite-worker.ts', import.meta.url), { unavailable: unavailable.buffer });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (message: { port: number }) => resolve(message.port));
    worker.once('error', reject);
  });
  let lastQuestion = 0;
  const ask = <T>(question: WorkerQuestion): Promise<T> => {
    const id = ++lastQuestion;
    return new Promise((resolve) => {
      const listener = (message: { id?: number }) => {
        if (message.id !== id) return;
        worker.off('message', listener);
        resolve(message as T);
      };
      worker.on('message', listener);
      worker.postMessage({ ...question, id });
    });
  };
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials, maxAttempts: 3 });
  const resetTable = async () => {
    await deleteTableIfExists(client, tableName);
    await client.send(new CreateTableCommand(tableDefinition(tableName)));
    await waitForTable(client, tableName, (status) => status === 'ACTIVE');
  };
  await resetTable();
  return {
    endpoint,
    resetTable,
    usage: async () => {
      const { requests, usage } = await ask<DynamoUsage>({ type: 'usage' });
      return { requests, usage };
    },
    setPartitionLimits: async (on) => {
      await ask({ type: 'limits', on });
    },
    setUnavailable: (on) => {
      Atomics.store(unavailable, 0, on ? 1 : 0);
    },
    close: async () => {
      client.destroy();
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ type: 'close', id: 0 });
      await exited;
    },
  };
}

async function deleteTableIfExists(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DeleteTableCommand({ TableName: tableName }));
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return;
    throw error;
  }
  await waitForTable(client, tableName, (status) => status === undefined);
}

/** Polls DescribeTable until the status satisfies `done` (undefined: the table is gone). */
async function waitForTable(client: DynamoDBClient, tableName: string, done: (status: string | undefined) => boolean): Promise<void> {
  const deadline = Date.now() + TABLE_WAIT_MS;
  for (;;) {
    if (done(await tableStatus(client, tableName))) return;
    if (Date.now() > deadline) throw new Error(`table ${tableName} did not reach the expected state within ${TABLE_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function tableStatus(client: DynamoDBClient, tableName: string): Promise<string | undefined> {
  try {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return Table?.TableStatus ?? 'UNKNOWN';
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}
