import { parseArgs } from 'node:util';
import { measureBurst, startBenchStack } from './local-runs';

/**
 * `npx tsx bench/partitions.ts --connections 2000 [--limits off]`: one burst on
 * one service, every notification delivered twice, on the bench's stack (the
 * deployed queue settings, EC2's default rate limits), and what it cost each
 * DynamoDB partition: the figures the table's keys and shard counts are chosen
 * by (docs/architecture.md). With `--limits off` the partitions take whatever
 * they are asked, so their peaks show the demand; with the limits on (the
 * default), the throttling it meets.
 */
const { values } = parseArgs({ options: { connections: { type: 'string', default: '1000' }, limits: { type: 'string', default: 'on' } } });
const connections = Number(values.connections);
const limitsOn = values.limits !== 'off';

const bench = await startBenchStack();
try {
  if (!limitsOn) {
    // measureBurst sets the faults it needs; the limits are switched off on the same call.
    const faults = bench.stack.faults.bind(bench.stack);
    bench.stack.faults = (body) => faults({ ...body, dynamoPartitionLimits: false });
  }
  const burst = await measureBurst(bench, connections, 2);
  const dynamo = burst.dynamodb;
  if (!dynamo) throw new Error('the stack reported no DynamoDB figures');
  // The table's and each index's units since this stack started: the burst, and one GET /services.
  const { byTable } = (await bench.stack.request('GET', '/local/dynamodb-calls')).body as {
    byTable: Record<string, { writeUnits: number; readUnits: number; throttled: number; byIndex: Record<string, { writeUnits: number; readUnits: number; throttled: number }> }>;
  };
  const perConnection = (units: number) => (units / connections).toFixed(2);
  const resources = Object.values(byTable).flatMap((table) => [
    { name: 'table', ...table },
    ...Object.entries(table.byIndex).map(([name, usage]) => ({ name, ...usage })),
  ]);
  const lines = [
    `${connections} connections on one service, every notification delivered twice, DynamoDB partition limits ${dynamo.partitionLimits ? 'on' : 'off'}`,
    `decided ${(burst.decidedAfterLastConnectMs / 1000).toFixed(1)} s after the last Connect; ${burst.undecided} undecided, ${burst.deadLetters} dead-lettered, ` +
      `${burst.invocations.total} invocations (${burst.invocations.failed} failed)`,
    `DynamoDB: ${burst.dynamodbRequestsPerDecided.toFixed(2)} requests, ${(dynamo.writeUnits / connections).toFixed(2)} write units and ` +
      `${(dynamo.readUnits / connections).toFixed(2)} read units per connection; ${dynamo.throttledRequests} requests throttled, ` +
      `${dynamo.unprocessedItems} batch items handed back; the busiest partition's units need ${(dynamo.limitsAloneMs / 1000).toFixed(1)} s at its limits`,
    dynamo.servicesRead
      ? `GET /services afterwards: ${dynamo.servicesRead.dynamodbRequests} DynamoDB requests, ${dynamo.servicesRead.counted} connections counted`
      : '',
    '',
    '| table or index | write units per connection | read units per connection | throttled |',
    '| --- | ---: | ---: | ---: |',
    ...resources.map((r) => `| ${r.name} | ${perConnection(r.writeUnits)} | ${perConnection(r.readUnits)} | ${r.throttled} |`),
    '',
    '| table or index | partition key | write units | read units | peak write units/s | peak read units/s | throttled |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...dynamo.hotPartitions.map(
      (p) =>
        `| ${p.index ?? 'table'} | ${p.partitionKey.replace(/vpce-svc-[0-9a-f]+/, '<service>')} | ${p.writeUnits} | ${p.readUnits} | ` +
        `${p.peakWriteUnitsPerSecond} | ${p.peakReadUnitsPerSecond} | ${p.throttled} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await bench.stop();
}
