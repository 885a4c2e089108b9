import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { measureColdStart, type ColdStartResult } from './cold-start';
import { measureBurst, measureOverhead, startBenchStack, type BurstResult, type OverheadResult } from './local-runs';
import { measureQueueReads, type QueueReadsResult } from './queue-reads';
import { formatSummary } from './stats';
import { measureSweep, type SweepResult } from './sweep';

/**
 * `npm run bench`: cold start of every function, a burst of connection requests,
 * the handler's overhead over its AWS calls, and (where those features exist)
 * the reconciler's sweep and the approvals queue. Prints a table and writes the
 * figures to bench/results.json. `--smoke` runs a few-second version for CI.
 */
const { values } = parseArgs({ options: { smoke: { type: 'boolean', default: false }, out: { type: 'string' } } });
const smoke = values.smoke ?? false;
const sizes = smoke
  ? { rounds: 3, burst: 30, overhead: 10, queueRecords: 200, queueSamples: 20, sweepAvailable: 90, sweepPending: 10 }
  : { rounds: 15, burst: 1000, overhead: 200, queueRecords: 10_000, queueSamples: 200, sweepAvailable: 9000, sweepPending: 1000 };
// ACTION_BATCH_SIZE in lib/aws/ec2-gateway.ts (not imported: that module reads the functions' configuration)
const ACTION_BATCH_SIZE = 100;
const out = values.out ?? (smoke ? 'bench/results.smoke.json' : 'bench/results.json');

interface Results {
  when: string;
  smoke: boolean;
  node: string;
  coldStart: ColdStartResult;
  burst: BurstResult;
  overhead: OverheadResult;
  queueReads: QueueReadsResult;
  sweep: SweepResult;
  skipped: Record<string, string>;
}

async function main(): Promise<void> {
  log(`cold start: ${sizes.rounds} rounds`);
  const coldStart = await measureColdStart(sizes.rounds);
  const { stack, table, tableName } = await startBenchStack();
  try {
    log(`burst: ${sizes.burst} connections, every notification delivered twice`);
    const burst = await measureBurst(stack, table, tableName, sizes.burst, 2);
    log(`overhead: ${sizes.overhead} notifications one at a time, then the floor`);
    const overhead = await measureOverhead(stack, table, tableName, sizes.overhead);
    log(`sweep: ${sizes.sweepAvailable} available and ${sizes.sweepPending} pending connections`);
    const sweep = await measureSweep(stack, sizes.sweepAvailable, sizes.sweepPending, ACTION_BATCH_SIZE);
    log(`queue reads: ${sizes.queueRecords} records`);
    const queueReads = await measureQueueReads(stack, sizes.queueRecords, sizes.queueSamples);
    const results: Results = {
      when: new Date().toISOString(),
      smoke,
      node: process.version,
      coldStart,
      burst,
      overhead,
      queueReads,
      sweep,
      skipped: {},
    };
    await mkdir('bench', { recursive: true });
    await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(`${report(results)}\nfigures written to ${out}\n`);
    const problems = check(results);
    if (problems.length) {
      process.stderr.write(`\n${problems.join('\n')}\n`);
      process.exitCode = 1;
    }
  } finally {
    table.destroy();
    await stack.stop();
  }
}

/** What must hold whatever the machine: correctness under the burst. Speed targets are reported, not asserted. */
function check(results: Results): string[] {
  const problems: string[] = [];
  if (results.sweep.decided !== results.sweep.pending) problems.push(`sweep: decided ${results.sweep.decided} of ${results.sweep.pending} pending connections`);
  if (results.burst.undecided) problems.push(`burst: ${results.burst.undecided} connections were left undecided`);
  if (results.burst.acceptsPerConnection.min !== 1 || results.burst.acceptsPerConnection.max !== 1) {
    problems.push(`burst: successful Accept calls per connection ranged ${results.burst.acceptsPerConnection.min}..${results.burst.acceptsPerConnection.max}, not exactly 1`);
  }
  return problems;
}

function report(r: Results): string {
  const lines: string[] = [];
  const row = (...cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  lines.push('', `Cold start (median (p25–p75) of ${r.coldStart.rounds} rounds; bare node ${r.coldStart.bareNodeMs.median.toFixed(0)} ms)`, '');
  row('function', 'bundle', 'import time, x bare node', 'import ms');
  row('---', '---:', '---:', '---:');
  for (const f of [...r.coldStart.functions, r.coldStart.naiveBaseline]) {
    row(f.name, `${(f.bundleBytes / 1024).toFixed(0)} KiB`, formatSummary(f.ratio), formatSummary(f.importMs, 0));
  }
  const b = r.burst;
  lines.push('', `Burst: ${b.connections} connections at once, each notification delivered ${b.duplicateDeliveries}x`, '');
  row('figure', 'value');
  row('---', '---:');
  row('all accepted and recorded', `${(b.allDecidedMs / 1000).toFixed(1)} s`);
  row('handler latency p50 / p99', `${b.handlerMs.median.toFixed(1)} / ${b.handlerMs.p99.toFixed(1)} ms`);
  row('EC2 calls per connection', b.ec2CallsPerConnection.toFixed(2));
  row('EC2 calls by action', Object.entries(b.ec2CallsByAction).map(([a, n]) => `${a} ${n}`).join(', '));
  row('successful Accepts per connection (min..max)', `${b.acceptsPerConnection.min}..${b.acceptsPerConnection.max}`);
  row('left undecided', b.undecided);
  row('DynamoDB requests per connection', b.dynamodbRequestsPerConnection?.toFixed(2) ?? 'not counted');
  const o = r.overhead;
  lines.push('', `Handler overhead: ${o.notifications} Connect notifications one at a time, against the floor (the same calls, direct)`, '');
  row('figure', 'handler', 'floor', 'ratio');
  row('---', '---:', '---:', '---:');
  row('p50', `${o.handlerMs.median.toFixed(2)} ms`, `${o.floorMs.median.toFixed(2)} ms`, o.medianRatio.toFixed(2));
  row('p99', `${o.handlerMs.p99.toFixed(2)} ms`, `${o.floorMs.p99.toFixed(2)} ms`, o.p99Ratio.toFixed(2));
  row(
    'calls per notification',
    `EC2 ${o.callsPerNotification.ec2.toFixed(2)}, DynamoDB ${o.callsPerNotification.dynamodb?.toFixed(2) ?? '?'}, SNS ${o.callsPerNotification.sns.toFixed(2)}`,
    '',
    '',
  );
  const w = r.sweep;
  lines.push('', `Sweep: one service, ${w.available} available and ${w.pending} pending connections, one reconcile run`, '');
  row('figure', 'value', 'target');
  row('---', '---:', '---:');
  row('run time', `${(w.runMs / 1000).toFixed(2)} s`, '');
  row('DescribeVpcEndpointConnections', w.ec2Calls.DescribeVpcEndpointConnections ?? 0, w.expected.describes);
  row('AcceptVpcEndpointConnections', w.ec2Calls.AcceptVpcEndpointConnections ?? 0, w.expected.accepts);
  row('other EC2 calls', Object.entries(w.ec2Calls).filter(([a]) => !['DescribeVpcEndpointConnections', 'AcceptVpcEndpointConnections'].includes(a)).map(([a, n]) => `${a} ${n}`).join(', ') || 'none', '');
  row('pending connections decided', `${w.decided} of ${w.pending}`, '');
  const q = r.queueReads;
  lines.push('', `Queue reads: GET /connections (signed) with ${q.records} records, ${q.pageSize} a page`, '');
  row('figure', 'value');
  row('---', '---:');
  row('first page p50 / p99', `${q.firstPageMs.median.toFixed(1)} / ${q.firstPageMs.p99.toFixed(1)} ms (${q.firstPageMs.n} requests)`);
  row('full pagination', `${q.fullPagination.pages} pages in ${(q.fullPagination.ms / 1000).toFixed(2)} s`);
  for (const [what, why] of Object.entries(r.skipped)) lines.push('', `${what}: skipped, ${why}`);
  return lines.join('\n');
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
