import { QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

/** Every item a Query matches, reading page after page. */
export async function* queryAllItems(db: DynamoDBDocumentClient, input: QueryCommandInput): AsyncGenerator<Record<string, unknown>> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const output = await db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    yield* output.Items ?? [];
    startKey = output.LastEvaluatedKey;
  } while (startKey);
}
