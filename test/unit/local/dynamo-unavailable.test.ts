import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { type LocalDynamo, startDynamo } from '../../../local/aws/dynamo';

// The dynamoUnavailable switch on the local DynamoDB, through the real SDK with
// retries off: what a function sees of an unreachable table.
const TABLE = 'the-stacks-table';
const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

let dynamo: LocalDynamo;
let client: DynamoDBClient;

beforeAll(async () => {
  dynamo = await startDynamo(TABLE, CREDENTIALS);
  client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
});

afterAll(async () => {
  client.destroy();
  await dynamo.close();
});

const key = { pk: { S: 'CONN#vpce-svc-0#1' }, sk: { S: 'EP#vpce-0' } };

describe('the local DynamoDB while dynamoUnavailable is on', () => {
  it('cuts a connection that was open before the switch, before its request is read: nothing is written', async () => {
    await client.send(new ListTablesCommand({})); // a kept-alive connection, open before the switch

    dynamo.setUnavailable(true);
    const written = client.send(new PutItemCommand({ TableName: TABLE, Item: { ...key, state: { S: 'available' } } }));

    await expect(written).rejects.toThrow();
    dynamo.setUnavailable(false);
    expect((await client.send(new GetItemCommand({ TableName: TABLE, Key: key, ConsistentRead: true }))).Item).toBeUndefined();
  });

  it('refuses new connections, and answers again once the switch is off', async () => {
    const fresh = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 });
    try {
      dynamo.setUnavailable(true);
      await expect(fresh.send(new ListTablesCommand({}))).rejects.toThrow();

      dynamo.setUnavailable(false);
      expect((await fresh.send(new ListTablesCommand({}))).TableNames).toEqual([TABLE]);
    } finally {
      fresh.destroy();
    }
  });

  it('counts no request it cut', async () => {
    const before = (await dynamo.usage()).requests.PutItem ?? 0;

    dynamo.setUnavailable(true);
    await expect(client.send(new PutItemCommand({ TableName: TABLE, Item: key }))).rejects.toThrow();
    dynamo.setUnavailable(false);

    expect((await dynamo.usage()).requests.PutItem ?? 0).toBe(before);
  });
});
