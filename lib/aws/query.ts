import { BatchGetCommand, type BatchGetCommandOutput, QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/** Every item a Query matches, reading page after page. */
export async function* queryAllItems(db: DynamoDBDocumentClient, input: QueryCommandInput): AsyncGenerator<Record<string, unknown>> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const output = await db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    yield* output.Items ?? [];
    startKey = output.LastEvaluatedKey;
  } while (startKey);
}

const BATCH_GET_LIMIT = 100;
/**
 * BatchGetItem requests in flight at once for one read. A sweep of a large
 * service reads thousands of records: one request after another, it waits out
 * each round trip in turn. Eight at once keep a 10,000-record read's 100
 * requests at about 6 read units per partition each (keys spread over 16),
 * far from a partition's 3,000 a second.
 */
const BATCH_GET_CONCURRENCY = 8;

/**
 * The items at these keys that exist, read with BatchGetItem 100 keys at a
 * time, up to BATCH_GET_CONCURRENCY requests at once. The keys DynamoDB hands
 * back unprocessed (a partition over its limit) are asked for again, after a
 * pause that doubles each time.
 */
export async function batchGetItems(
  db: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  options: { consistentRead?: boolean; projection?: string; names?: Record<string, string> } = {},
): Promise<Record<string, unknown>[]> {
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_LIMIT) chunks.push(keys.slice(i, i + BATCH_GET_LIMIT));
  const read: Record<string, unknown>[][] = chunks.map(() => []);
  let next = 0;
  const reader = async () => {
    while (next < chunks.length) {
      const chunk = next++;
      read[chunk] = await batchGetChunk(db, tableName, chunks[chunk] as Record<string, unknown>[], options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(BATCH_GET_CONCURRENCY, chunks.length) }, reader));
  return read.flat();
}

/** One request's keys, asked for until none is handed back unprocessed. */
async function batchGetChunk(
  db: DynamoDBDocumentClient,
  tableName: string,
  keys: Record<string, unknown>[],
  options: { consistentRead?: boolean; projection?: string; names?: Record<string, string> },
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let requestKeys: Record<string, unknown>[] | undefined = keys;
  for (let attempt = 0; requestKeys?.length; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** attempt)));
    const output: BatchGetCommandOutput = await db.send(
      new BatchGetCommand({
        RequestItems: {
          [tableName]: {
            Keys: requestKeys,
            ConsistentRead: options.consistentRead,
            ...(options.projection ? { ProjectionExpression: options.projection, ExpressionAttributeNames: options.names } : {}),
          },
        },
      }),
    );
    items.push(...(output.Responses?.[tableName] ?? []));
    requestKeys = output.UnprocessedKeys?.[tableName]?.Keys;
  }
  return items;
}
