import { fleetMarkdown, type FleetResult } from './fleet';
import type { ColdStartResult, ColdStartRow } from './cold-start';
import { FLOOR_TARGET } from './sdk-floor';
import type { BurstResult, OverheadResult, QuietConnectResult } from './local-runs';
import type { QueueReadsResult } from './queue-reads';
import { formatSummary } from './stats';
import type { SweepResult } from './sweep';

/** One batching window's figures: a burst's calls and a lone Connect's latency. */
export interface WindowResult {
  batchingWindowSeconds: number;
  /** The batch size the window allows: AWS takes more than 10 only with a window of a second or more. */
  batchSize: number;
  burst: BurstResult;
  quietConnect: QuietConnectResult;
}

/** Everything `npm run bench` writes to bench/results.json. */
export interface Results {
  when: string;
  smoke: boolean;
  node: string;
  coldStart: ColdStartResult;
  bursts: BurstResult[];
  quietConnect: QuietConnectResult;
  windows: WindowResult[];
  overhead: OverheadResult;
  queueReads: QueueReadsResult;
  sweep: SweepResult;
  /** The fleet row (bench/fleet.ts); absent from runs before it. */
  fleet?: FleetResult[];
}

const seconds = (ms: number) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`);
const count = (n: number) => n.toLocaleString('en-US');

/** The Markdown block bench/README.md carries between the markers, made from the results alone. */
export function figuresMarkdown(r: Results): string {
  const lines: string[] = [];
  const row = (...cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  lines.push(`Run of ${r.when.slice(0, 10)}, Node ${r.node}.`, '');

  lines.push(`**Bursts** under EC2's default rate limits, every notification delivered ${r.bursts[0]?.duplicateDeliveries ?? 2} times, deployed queue settings:`, '');
  row('figure', ...r.bursts.map((b) => `${count(b.connections)} connections`), 'target');
  row('---', ...r.bursts.map(() => '---:'), '---');
  row('all decided, after the last Connect', ...r.bursts.map((b) => seconds(b.decidedAfterLastConnectMs)), '≤ 30 s');
  row('EC2 calls per connection', ...r.bursts.map((b) => b.ec2Calls.perConnection.toFixed(3)), '≤ 0.05 (1,000), ≤ 0.02 (10,000)');
  row(
    'EC2 calls by action (refused by the rate limits)',
    ...r.bursts.map((b) =>
      Object.entries(b.ec2Calls.byAction)
        .map(([action, c]) => `${action.replace('VpcEndpoint', '')} ${c.received}${c.failed ? ` (${c.failed})` : ''}`)
        .join(', '),
    ),
    '',
  );
  row('successful Accepts per connection', ...r.bursts.map((b) => `${b.acceptsPerConnection.min}..${b.acceptsPerConnection.max}`), 'exactly 1');
  row('left undecided / in the DLQ', ...r.bursts.map((b) => `${b.undecided} / ${b.deadLetters}`), '0 / 0');
  row('invocations (failed), mean batch', ...r.bursts.map((b) => `${b.invocations.total} (${b.invocations.failed}), ${b.invocations.meanBatchSize.toFixed(1)}`), 'none failed');
  row('longest invocation', ...r.bursts.map((b) => seconds(b.invocations.longestMs)), 'within the 30 s timeout');
  row('DynamoDB requests per decided connection', ...r.bursts.map((b) => b.dynamodbRequestsPerDecided.toFixed(2)), '≤ 4');
  if (r.bursts.some((b) => b.dynamodb)) dynamoRows(r.bursts, row);
  lines.push('');

  const q = r.quietConnect;
  lines.push(
    `**One Connect on a quiet stack** (batching window ${q.batchingWindowSeconds} s): decided in ${seconds(q.decidedMs.median)} ` +
      `(p99 ${seconds(q.decidedMs.p99)}, ${q.decidedMs.n} samples); target: within the window plus 1 s.`,
    '',
  );

  if (r.windows.length) {
    lines.push('**The batching window** (`notificationBatchingWindow`): latency against calls.', '');
    row('window (batch size)', 'lone Connect decided (p50)', `${count(r.windows[0]?.burst.connections ?? 0)} burst: EC2 calls per connection`, 'invocations, mean batch', 'decided after last Connect');
    row('---', '---:', '---:', '---:', '---:');
    for (const w of r.windows) {
      row(
        `${w.batchingWindowSeconds} s (${count(w.batchSize)})`,
        seconds(w.quietConnect.decidedMs.median),
        w.burst.ec2Calls.perConnection.toFixed(3),
        `${w.burst.invocations.total}, ${w.burst.invocations.meanBatchSize.toFixed(1)}`,
        seconds(w.burst.decidedAfterLastConnectMs),
      );
    }
    lines.push('');
  }

  const o = r.overhead;
  lines.push(
    `**Handler overhead**: ${o.notifications} Connects one at a time, each a batch of one handed straight to the handler (rate limits off), against the floor: ` +
      `the same AWS calls made directly (EC2 ${o.callsPerNotification.ec2.toFixed(2)}, DynamoDB ${o.callsPerNotification.dynamodb.toFixed(2)}, ` +
      `SNS ${o.callsPerNotification.sns.toFixed(2)} per notification).`,
    '',
  );
  row('', 'handler', 'floor', 'ratio');
  row('---', '---:', '---:', '---:');
  row('p50', `${o.handlerMs.median.toFixed(1)} ms`, `${o.floorMs.median.toFixed(1)} ms`, o.medianRatio.toFixed(2));
  row('p99', `${o.handlerMs.p99.toFixed(1)} ms`, `${o.floorMs.p99.toFixed(1)} ms`, o.p99Ratio.toFixed(2));
  lines.push('');

  const w = r.sweep;
  lines.push(
    `**Sweep**: one service with ${count(w.available)} available and ${count(w.pending)} pending connections, one reconcile run: ` +
      `${(w.runMs / 1000).toFixed(1)} s, ${w.ec2Calls.DescribeVpcEndpointConnections ?? 0} Describe calls (target ${w.expected.describes}) and ` +
      `${w.ec2Calls.AcceptVpcEndpointConnections ?? 0} Accept calls (target ${w.expected.accepts}); ${count(w.decided)} of ${count(w.pending)} decided.`,
    '',
  );
  const qr = r.queueReads;
  lines.push(
    `**Queue reads**: \`GET /connections\` (signed) with ${count(qr.records)} records: first page (${qr.pageSize}) p50 ${qr.firstPageMs.median.toFixed(1)} ms, ` +
      `p99 ${qr.firstPageMs.p99.toFixed(1)} ms over ${qr.firstPageMs.n} requests; ` +
      (qr.fullPagination.error
        ? `the full pagination FAILED after ${qr.fullPagination.pages} pages: ${qr.fullPagination.error}.`
        : `the full queue, ${qr.fullPagination.pages} pages, in ${(qr.fullPagination.ms / 1000).toFixed(1)} s.`),
    '',
  );

  if (r.fleet?.length) lines.push(fleetMarkdown(r.fleet), '');

  lines.push(coldStartMarkdown(r.coldStart));
  return lines.join('\n');
}

type MeasuredAgainstFloor = ColdStartRow & Required<Pick<ColdStartRow, 'floor' | 'ratioToFloor' | 'cpuRatioToFloor' | 'beyondFloor'>>;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/** The cold-start figures: each function against its SDK floor and a bare node, what it holds beyond the floor. */
export function coldStartMarkdown(c: ColdStartResult): string {
  const lines: string[] = [];
  const row = (...cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const withFloors = c.functions.filter((f): f is MeasuredAgainstFloor => f.floor !== undefined && f.ratioToFloor !== undefined && f.cpuRatioToFloor !== undefined && f.beyondFloor !== undefined);
  if (withFloors.length < c.functions.length) {
    // Results from before the bench measured floors.
    lines.push('**Cold start** (× a bare `node`, median and interquartile range):', '');
    row('function', 'bundle', '× bare node');
    row('---', '---:', '---:');
    for (const f of [...c.functions, c.naiveBaseline]) row(f.name, kib(f.bundleBytes), formatSummary(f.ratio));
    return lines.join('\n');
  }
  lines.push(
    `**Cold start**: a fresh \`node\` importing each function's bundle as Lambda starts it, against its SDK floor (the SDK clients and commands ` +
      `its bundle contains, alone, built the same way, each client constructed) and a bare \`node\` (${c.bareNodeMs.median.toFixed(0)} ms${c.node ? `, Node ${c.node}` : ''}), ` +
      `ratios of wall time (and of CPU time) paired round by round over ${c.rounds} rounds; median and interquartile range:`,
    '',
  );
  row('function', 'bundle', 'SDK floor', '× its floor', '× its floor, CPU time', '× bare node', 'floor × bare node');
  row('---', '---:', '---:', '---:', '---:', '---:', '---:');
  for (const f of withFloors) {
    row(f.name, kib(f.bundleBytes), kib(f.floor.bundleBytes), formatSummary(f.ratioToFloor), formatSummary(f.cpuRatioToFloor), formatSummary(f.ratio), formatSummary(f.floor.ratio));
  }
  row(c.naiveBaseline.name, kib(c.naiveBaseline.bundleBytes), '', '', '', formatSummary(c.naiveBaseline.ratio), '');
  lines.push('', `Target: each function ≤ ${FLOOR_TARGET.toFixed(2)}× its floor. Each floor, read from its bundle's metafile:`, '');
  for (const f of withFloors) {
    const clients = f.floor.clients.map((use) => `${use.client} (${use.commands.map((command) => command.replace(/Command$/, '')).join(', ')})`);
    lines.push(`- ${f.name}: ${clients.join('; ')}.`);
  }
  lines.push('', 'What each bundle holds beyond its floor (bytes in the bundle, by package or source folder):', '');
  for (const f of withFloors) {
    const parts = f.beyondFloor;
    const total = parts.reduce((sum, part) => sum + part.bytes, 0);
    lines.push(`- ${f.name}, ${kib(total)}: ${parts.map((part) => `${part.part} ${kib(part.bytes)}`).join(', ')}.`);
  }
  return lines.join('\n');
}

/** What the bursts cost DynamoDB's partitions (runs from before the local DynamoDB metered them show a dash). */
function dynamoRows(bursts: BurstResult[], row: (...cells: (string | number)[]) => void): void {
  const each = (figure: (d: NonNullable<BurstResult['dynamodb']>, b: BurstResult) => string) => bursts.map((b) => (b.dynamodb ? figure(b.dynamodb, b) : '—'));
  row('DynamoDB partition limits', ...each((d) => (d.partitionLimits ? 'on' : 'off')), 'on');
  row('DynamoDB units per connection, write / read', ...each((d, b) => `${(d.writeUnits / b.connections).toFixed(1)} / ${(d.readUnits / b.connections).toFixed(1)}`), '');
  row('DynamoDB requests throttled (batch items handed back)', ...each((d) => `${count(d.throttledRequests)} (${count(d.unprocessedItems)})`), 'reported');
  row(
    'GET /services afterwards: DynamoDB requests (connections counted)',
    ...each((d) => (d.servicesRead ? `${d.servicesRead.dynamodbRequests} (${count(d.servicesRead.counted)})` : '—')),
    '≤ 5',
  );
  row(
    'busiest DynamoDB partition: write / read units (its limits alone take)',
    ...each((d) => {
      const [p] = d.hotPartitions;
      if (!p) return 'none';
      const name = `${p.index ?? 'table'} ${p.partitionKey.replace(/vpce-svc-[0-9a-f]+/, '…')}`;
      return `${name}: ${count(p.writeUnits)} / ${count(p.readUnits)} (${seconds(d.limitsAloneMs)})`;
    }),
    '',
  );
}

/** The block README.md's Performance section carries between its markers: the headline figures. */
export function performanceMarkdown(r: Results): string {
  const lines: string[] = [];
  const row = (...cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const duplicates = r.bursts[0]?.duplicateDeliveries ?? 2;
  lines.push(
    `Measured by \`npm run bench\` on ${r.when.slice(0, 10)} (Node ${r.node}) on the local stack, under EC2's default rate limits, ` +
      `every notification delivered ${duplicates} times, with the deployed queue settings:`,
    '',
  );
  row('endpoints created at once', 'all decided, after the last Connect', 'EC2 calls per connection', 'DynamoDB requests per connection', 'invocations (failed)', 'dead-lettered');
  row('---:', '---:', '---:', '---:', '---:', '---:');
  for (const b of r.bursts) {
    row(count(b.connections), seconds(b.decidedAfterLastConnectMs), b.ec2Calls.perConnection.toFixed(3), b.dynamodbRequestsPerDecided.toFixed(2), `${count(b.invocations.total)} (${b.invocations.failed})`, b.deadLetters);
  }
  lines.push('');
  const q = r.quietConnect;
  lines.push(`A lone Connect on a quiet stack is decided in ${seconds(q.decidedMs.median)} (p99 ${seconds(q.decidedMs.p99)}) with the ${q.batchingWindowSeconds} s batching window.`);
  if (r.windows.length > 1) {
    lines.push('', 'The batching window against the same burst:', '');
    row('batching window (batch size)', 'lone Connect decided (p50)', `${count(r.windows[0]?.burst.connections ?? 0)} burst: EC2 calls per connection`, 'invocations');
    row('---', '---:', '---:', '---:');
    for (const w of r.windows) {
      row(`${w.batchingWindowSeconds} s (${count(w.batchSize)})`, seconds(w.quietConnect.decidedMs.median), w.burst.ec2Calls.perConnection.toFixed(3), count(w.burst.invocations.total));
    }
  }
  return lines.join('\n');
}

/** A generated block of a Markdown file: what lies between its two markers. */
export interface Block {
  begin: string;
  end: string;
}

export const BENCH_FIGURES: Block = {
  begin: '<!-- figures from bench/results.json (npm run bench rewrites this block) -->',
  end: '<!-- end of figures -->',
};
export const README_PERFORMANCE: Block = {
  begin: '<!-- performance from bench/results.json (npm run bench rewrites this block) -->',
  end: '<!-- end of performance -->',
};

/** `markdown` with `block` replaced by `text`; throws when a marker is missing. */
export function withBlock(markdown: string, block: Block, text: string): string {
  const begin = markdown.indexOf(block.begin);
  const end = markdown.indexOf(block.end);
  if (begin < 0 || end < begin) throw new Error(`the markers ${block.begin} … ${block.end} are missing`);
  return `${markdown.slice(0, begin + block.begin.length)}\n${text}\n${markdown.slice(end)}`;
}

/** What `block` of `markdown` holds, trimmed; undefined when a marker is missing. */
export function blockOf(markdown: string, block: Block): string | undefined {
  const begin = markdown.indexOf(block.begin);
  const end = markdown.indexOf(block.end);
  if (begin < 0 || end < begin) return undefined;
  return markdown.slice(begin + block.begin.length, end).trim();
}
