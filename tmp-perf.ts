import { Worker } from 'node:worker_threads';
import { DynamoDBClient, CreateTableCommand, PutItemCommand, BatchGetItemCommand } from '@aws-sdk/client-dynamodb';
import { tableDefinition } from './lib/aws/table';
const file = process.argv[2]!;
const w = new Worker(new URL(file, import.meta.url));
const port = await new Promise<number>((r) => w.once('message', (m) => r(m.port)));
const c = new DynamoDBClient({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
await c.send(new CreateTableCommand(tableDefinition('perf')));
const hist = Array.from({ length: 4 }, (_, i) => ({ M: { at: { S: '2026-01-01T00:00:00.000Z' }, event: { S: 'state-changed' }, detail: { S: 'x'.repeat(120) } } }));
const item = (i: number, v: number) => ({ pk: { S: `CONN#svc-${i % 4}` }, sk: { S: `EP#${i}` }, gsi1pk: { S: `STATE#s${v}` }, gsi1sk: { S: `2026#${i}` }, state: { S: `s${v}` }, version: { N: String(v) }, history: { L: hist } });
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  const all = [];
  for (let i = 0; i < 3000; i++) { all.push(c.send(new PutItemCommand({ TableName: 'perf', Item: item(i, round) }))); if (all.length >= 20) await Promise.all(all.splice(0)); }
  await Promise.all(all);
  const t1 = performance.now();
  for (let i = 0; i < 3000; i += 100) await c.send(new BatchGetItemCommand({ RequestItems: { perf: { Keys: Array.from({ length: 100 }, (_, k) => ({ pk: { S: `CONN#svc-${(i + k) % 4}` }, sk: { S: `EP#${i + k}` } })), ConsistentRead: true } } }));
  console.log(file, 'round', round, 'puts ms', Math.round(t1 - t0), 'batchgets ms', Math.round(performance.now() - t1));
}
w.postMessage({ type: 'close', id: 0 }); w.postMessage('close'); c.destroy();
