// Vitest setup file: every test file gets the environment the functions read at
// cold start, and its own in-memory DynamoDB (dynalite) with the stack's table.
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll } from 'vitest';
import 'aws-sdk-client-mock-vitest/extend';
import { tableDefinition } from '../../lib/aws/table';

export const TEST_TABLE = 'vpce-gatekeeper-test';
export const TEST_OUTBOUND_TOPIC = 'arn:aws:sns:us-east-1:111111111111:vpce-gatekeeper-test-decisions';

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

Object.assign(process.env, {
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_ENDPOINT_URL_DYNAMODB: endpoint,
  TABLE_NAME: TEST_TABLE,
  OUTBOUND_TOPIC_ARN: TEST_OUTBOUND_TOPIC,
  AWS_MAX_ATTEMPTS: '3',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_NAMESPACE: 'vpce-gatekeeper-test',
});

const admin = new DynamoDBClient({ endpoint });
await admin.send(new CreateTableCommand(tableDefinition(TEST_TABLE)));

afterAll(async () => {
  admin.destroy();
  await new Promise((resolve) => server.close(resolve));
});
