import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AttributeValue,
  BatchGetItemCommand,
  type BatchGetItemCommandOutput,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { type LocalDynamo, startDynamo } from '../../../local/aws/dynamo';
import { meteredTable } from './metered-table';

// The local DynamoDB (dynalite in its worker, metered) through the real SDK, with
// retries off so that each throttling answer is seen as DynamoDB gives it.
const TABLE = 'limits-test';
const TABLE_ARN = `arn:aws:dynamodb:us-east-1:000000000000:table/${TABLE}`;
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
/** 390 KB: 381 write units, 96 read units for a consistent read. */
const LARGE = 'x'.repeat(390_000);

let dynamo: LocalDynamo;
let client: DynamoDBClient;
/** For writing what a test starts from: retries throttling, as the functions' clients do. */
let retrying: DynamoDBClient;

beforeAll(async () => {
  dynamo = await startDynamo('the-stacks-table', CREDENTIALS);
  client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
  await client.send(new CreateTableCommand(meteredTable(TABLE)));
  retrying = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 20 });
});

afterAll(async () => {
  client.destroy();
  retrying.destroy();
  await dynamo.close();
});

const s = (text: string): AttributeValue => ({ S: text });

/** A connection-shaped item: on partition `pk` of the table, and `STATE#<state>` of the byState index. */
function item(pk: string, sk: string, options: { state?: string; padding?: string } = {}): Record<string, AttributeValue> {
  const state = options.state ?? 'pendingAcceptance';
  return { pk: s(pk), sk: s(sk), gsi1pk: s(`STATE#${state}#${pk}`), gsi1sk: s(sk), state: s(state), padding: s(options.padding ?? '') };
}

async function put(record: Record<string, AttributeValue>): Promise<ProvisionedThroughputExceededException | undefined> {
  try {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: record }));
    return undefined;
  } catch (error) {
    if (error instanceof ProvisionedThroughputExceededException) return error;
    throw error;
  }
}

async function stored(pk: string, sk: string): Promise<boolean> {
  const { Item } = await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: s(pk), sk: s(sk) }, ProjectionExpression: 'sk' }));
  return Item !== undefined;
}

/** Writes large items on one partition until one is refused; `attempts` bounds it. */
async function exhaustWrites(pk: string, attempts = 20): Promise<{ refused?: ProvisionedThroughputExceededException; refusedSk?: string; written: number }> {
  for (let i = 0; i < attempts; i++) {
    const sk = `EP#exhaust-${i}`;
    const refused = await put(item(pk, sk, { padding: LARGE }));
    if (refused) return { refused, refusedSk: sk, written: i };
  }
  return { written: attempts };
}

/**
 * Reads a large item consistently, 40 reads at once, until one is refused;
 * `rounds` bounds it. Each read asks for one attribute: DynamoDB charges the
 * whole item all the same, and dynalite answers fast enough to outrun the refill.
 */
async function exhaustReads(pk: string, sk: string, rounds = 20): Promise<{ refused?: unknown; reads: number }> {
  let reads = 0;
  for (let round = 0; round < rounds; round++) {
    const answers = await Promise.all(
      Array.from({ length: 40 }, () =>
        client
          .send(new GetItemCommand({ TableName: TABLE, Key: { pk: s(pk), sk: s(sk) }, ConsistentRead: true, ProjectionExpression: 'sk' }))
          .then(() => undefined, (error: unknown) => error),
      ),
    );
    const refused = answers.find((answer) => answer !== undefined);
    reads += answers.filter((answer) => answer === undefined).length;
    if (refused) return { refused, reads };
  }
  return { reads };
}

// Large items take dynalite tens of milliseconds each: a partition takes seconds to exhaust on a busy machine.
describe('DynamoDB per-partition limits in the local DynamoDB', { timeout: 60_000 }, () => {
  it('refuses a write once its partition key has spent its 1,000 write units, saying which table, and stores nothing; other keys are served', async () => {
    const { refused, refusedSk, written } = await exhaustWrites('CONN#hot-write');
    const otherKey = await put(item('CONN#cold-write', 'EP#1', { padding: LARGE }));

    expect(written).toBeGreaterThanOrEqual(2); // 381 units each: the third, or a later one, finds no balance left
    expect(refused?.$metadata.httpStatusCode).toBe(400);
    expect(refused?.ThrottlingReasons).toEqual([{ reason: 'TableWriteKeyRangeThroughputExceeded', resource: TABLE_ARN }]);
    expect(await stored('CONN#hot-write', refusedSk ?? '')).toBe(false);
    expect(otherKey).toBeUndefined();
  });

  it("refuses a write whose index partition is over its limit, with the index's ARN, though the table's partitions are cold", async () => {
    let refused: ProvisionedThroughputExceededException | undefined;
    let refusedPk = '';
    for (let i = 0; i < 20 && !refused; i++) {
      refusedPk = `CONN#index-hot-${i}`;
      // Every item on its own table partition, all on one partition of byState.
      refused = await put({ ...item(refusedPk, 'EP#1', { padding: LARGE }), gsi1pk: s('STATE#shared') });
    }

    expect(refused?.ThrottlingReasons).toEqual([{ reason: 'IndexWriteKeyRangeThroughputExceeded', resource: `${TABLE_ARN}/index/byState` }]);
    expect(await stored(refusedPk, 'EP#1')).toBe(false);
  });

  it('refuses reads once a partition key has spent its 3,000 read units', async () => {
    await put(item('CONN#hot-read', 'EP#1', { padding: LARGE }));
    const { refused, reads } = await exhaustReads('CONN#hot-read', 'EP#1');

    expect(refused).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect((refused as ProvisionedThroughputExceededException).ThrottlingReasons).toEqual([
      { reason: 'TableReadKeyRangeThroughputExceeded', resource: TABLE_ARN },
    ]);
    expect(reads).toBeGreaterThanOrEqual(31); // 96 units a read
  });

  it('hands back the puts of a batch whose partition is over its limit as UnprocessedItems, and writes the rest', async () => {
    await exhaustWrites('CONN#batch-hot');
    const hot = Array.from({ length: 10 }, (_, i) => item('CONN#batch-hot', `EP#batch-${i}`, { padding: LARGE }));
    const cold = item('CONN#batch-cold', 'EP#1');

    const output = await client.send(
      new BatchWriteItemCommand({ RequestItems: { [TABLE]: [...hot, cold].map((Item) => ({ PutRequest: { Item } })) } }),
    );

    const unprocessed = (output.UnprocessedItems?.[TABLE] ?? []).map((request) => request.PutRequest?.Item?.sk?.S);
    expect(unprocessed.length).toBeGreaterThan(0);
    expect(unprocessed).not.toContain('EP#1');
    expect(await stored('CONN#batch-cold', 'EP#1')).toBe(true);
    for (const record of hot) {
      expect(await stored('CONN#batch-hot', record.sk!.S as string)).toBe(!unprocessed.includes(record.sk!.S as string));
    }
  });

  it('refuses a batch of writes as a whole when none of them can be written', async () => {
    await exhaustWrites('CONN#batch-all-hot');
    let refused: unknown;
    for (let attempt = 0; attempt < 10 && !refused; attempt++) {
      const requests = Array.from({ length: 3 }, (_, i) => ({ PutRequest: { Item: item('CONN#batch-all-hot', `EP#all-${attempt}-${i}`, { padding: LARGE }) } }));
      refused = await client.send(new BatchWriteItemCommand({ RequestItems: { [TABLE]: requests } })).then(
        () => undefined,
        (error: unknown) => error,
      );
    }

    expect((refused as ProvisionedThroughputExceededException).ThrottlingReasons).toEqual([
      { reason: 'TableWriteKeyRangeThroughputExceeded', resource: TABLE_ARN },
    ]);
  });

  it('hands back the keys of a batch read on a partition over its limit as UnprocessedKeys, asked for the same way', async () => {
    // 40 items of 40 KB: 10 read units each, 400 a batch; batch after batch, the partition's 3,000 a second run out.
    const hotKeys = Array.from({ length: 40 }, (_, i) => ({ pk: s('CONN#batch-read-hot'), sk: s(`EP#${i}`) }));
    for (const key of hotKeys) {
      await retrying.send(new PutItemCommand({ TableName: TABLE, Item: item('CONN#batch-read-hot', key.sk.S as string, { padding: 'r'.repeat(40_000) }) }));
    }
    await put(item('CONN#batch-read-cold', 'EP#1'));
    const coldKey = { pk: s('CONN#batch-read-cold'), sk: s('EP#1') };

    let output: BatchGetItemCommandOutput | undefined;
    for (let batch = 0; batch < 100 && !output?.UnprocessedKeys?.[TABLE]; batch++) {
      output = await client.send(
        new BatchGetItemCommand({ RequestItems: { [TABLE]: { Keys: [...hotKeys, coldKey], ConsistentRead: true, ProjectionExpression: 'sk' } } }),
      );
    }

    const handedBack = output?.UnprocessedKeys?.[TABLE];
    expect(handedBack?.Keys?.length).toBeGreaterThan(0);
    expect(handedBack?.Keys?.every((key) => key.pk?.S === 'CONN#batch-read-hot')).toBe(true);
    expect(handedBack).toMatchObject({ ConsistentRead: true, ProjectionExpression: 'sk' });
    expect(output?.Responses?.[TABLE]?.map((read) => read.sk?.S)).toContain('EP#1');
  });

  it('meters units by table and by index: a write by the item and each index entry, reads by 4 KB', async () => {
    const before = (await dynamo.usage()).usage.byTable[TABLE];
    await put(item('CONN#metered', 'EP#1', { padding: 'y'.repeat(5000) })); // 5,097 bytes: 5 units, on the table and on byState
    await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: s('CONN#metered'), sk: s('EP#1') }, ConsistentRead: true })); // 2
    await client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: s('CONN#metered'), sk: s('EP#1') } })); // 1
    await client.send(
      new QueryCommand({
        TableName: TABLE,
        IndexName: 'byServiceState',
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': s('CONN#metered') },
      }),
    ); // keys only: 0.5

    const after = (await dynamo.usage()).usage.byTable[TABLE];
    expect(after!.writeUnits - before!.writeUnits).toBe(5);
    expect(after!.readUnits - before!.readUnits).toBe(3);
    expect(after!.byIndex.byState!.writeUnits - before!.byIndex.byState!.writeUnits).toBe(5);
    expect(after!.byIndex.byServiceState!.writeUnits - before!.byIndex.byServiceState!.writeUnits).toBe(1);
    expect(after!.byIndex.byServiceState!.readUnits - (before!.byIndex.byServiceState?.readUnits ?? 0)).toBe(0.5);
  });

  it('counts throttling by table and index, and names the hottest partitions since the table was created', async () => {
    await client.send(new DeleteTableCommand({ TableName: TABLE }));
    await client.send(new CreateTableCommand(meteredTable(TABLE)));
    const before = (await dynamo.usage()).usage;
    await put(item('CONN#cool', 'EP#1'));
    await exhaustWrites('CONN#reported');

    const { usage } = await dynamo.usage();

    expect(usage.throttledRequests).toBe(before.throttledRequests + 1);
    expect(usage.byTable[TABLE]!.throttled).toBe((before.byTable[TABLE]?.throttled ?? 0) + 1);
    const partitions = usage.hotPartitions.map(({ index, partitionKey, throttled }) => `${index ?? 'table'} ${partitionKey} ${throttled}`);
    expect(partitions[0]).toBe('table CONN#reported 1'); // the most units first
    expect(partitions.slice(1).sort()).toEqual([
      'byServiceState CONN#cool 0',
      'byServiceState CONN#reported 0',
      'byState STATE#pendingAcceptance#CONN#cool 0',
      'byState STATE#pendingAcceptance#CONN#reported 0',
      'table CONN#cool 0',
    ]);
  });

  it('serves any rate with the limits off, and none beyond them once they are on again', async () => {
    await dynamo.setPartitionLimits(false);
    const whileOff = await exhaustWrites('CONN#switch', 6);
    await dynamo.setPartitionLimits(true);
    const onAgain = await exhaustWrites('CONN#switch', 20);

    expect(whileOff).toEqual({ written: 6 });
    expect(onAgain.refused).toBeInstanceOf(ProvisionedThroughputExceededException);
  });

  it('holds a partition to 1,000 write units a second, sustained', async () => {
    const started = performance.now();
    let units = 0;
    for (let i = 0; performance.now() - started < 1500; i++) {
      const refused = await put(item('CONN#sustained', `EP#${i}`, { padding: 'z'.repeat(20_000) })); // 20 units
      if (!refused) units += 20;
    }
    const seconds = (performance.now() - started) / 1000;

    expect(units).toBeLessThanOrEqual(1000 + 1000 * seconds + 20);
  });
});
