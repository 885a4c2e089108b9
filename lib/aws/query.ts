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
 * The items at these keys that exist, read with BatchGetItem 100 keys at a
 * time. The keys DynamoDB hands back unprocessed (a partition over its limit)
 * are asked for again, after a pause that doubles each time.
 */
export async function batchGetItems(
  db: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  options: { consistentRead?: boolean; projection?: string; names?: Record<string, string> } = {},
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_LIMIT) {
    let requestKeys: Record<string, unknown>[] | undefined = keys.slice(i, i + BATCH_GET_LIMIT);
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
  }
  return items;
}
