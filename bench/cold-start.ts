import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { parse as parseYaml } from 'yaml';
import { summarize, type Summary } from './stats';

// Cold start, per function of the packaged stack: bundle size, and the time a fresh
// node process takes to import the bundle (running the module's initialisation),
// as a ratio to a bare node process started in the same round.

const require = createRequire(import.meta.url);
const { esbuildOptions } = require('../esbuild.config.cjs') as { esbuildOptions: Record<string, unknown> };

const repoRoot = resolve(import.meta.dirname, '..');

// What each function reads at cold start; values only need to be well-formed.
const FUNCTION_ENV = {
  TABLE_NAME: 'vpce-gatekeeper-bench-state',
  OUTBOUND_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-bench-decisions',
  MANAGED_SERVICE_IDS: '',
  DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/vpce-gatekeeper-bench-notifications-dlq',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
};

export interface ColdStartRow {
  name: string;
  bundleBytes: number;
  /** Import time divided by a bare node process's run time, per round. */
  ratio: Summary;
  importMs: Summary;
}

export interface ColdStartResult {
  rounds: number;
  bareNodeMs: Summary;
  functions: ColdStartRow[];
  naiveBaseline: ColdStartRow;
}

/** The functions of serverless.yml: name and handler source file. */
async function stackFunctions(): Promise<{ name: string; entry: string }[]> {
  // CloudFormation tags (!Ref, !GetAtt, !Sub) are kept as plain values: only handler paths matter here.
  const document = parseYaml(await readFile(join(repoRoot, 'serverless.yml'), 'utf8'), { logLevel: 'silent' }) as {
    functions: Record<string, { handler: string }>;
  };
  return Object.entries(document.functions).map(([name, fn]) => ({
    name,
    entry: join(repoRoot, `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.ts`),
  }));
}

async function bundle(entry: string, outfile: string, options: Record<string, unknown>): Promise<number> {
  await build({ ...options, entryPoints: [entry], outfile, logLevel: 'silent' });
  return (await stat(outfile)).size;
}

/** Milliseconds for `node file` to run to completion. */
function timeNode(file: string): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [file], { env: { ...process.env, ...FUNCTION_ENV }, stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`node ${file} failed: ${result.stderr.toString().slice(-800)}`);
  return elapsed;
}

/** Builds every function as `serverless package` does, plus the naive baseline, and times their imports. */
export async function measureColdStart(rounds: number): Promise<ColdStartResult> {
  const dir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-bench-'));
  const targets: { name: string; bundleBytes: number; runner: string }[] = [];

  for (const fn of await stackFunctions()) {
    const outfile = join(dir, `${fn.name}.mjs`);
    const bundleBytes = await bundle(fn.entry, outfile, { ...esbuildOptions, sourcemap: false });
    targets.push({ name: fn.name, bundleBytes, runner: await runnerFor(dir, fn.name, outfile) });
  }

  // The naive baseline: the three clients imported the plain way, esbuild's defaults.
  const naiveEntry = join(dir, 'naive-entry.mjs');
  await writeFile(
    naiveEntry,
    [
      "import { EC2Client } from '@aws-sdk/client-ec2';",
      "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
      "import { SNSClient } from '@aws-sdk/client-sns';",
      'export const clients = [new EC2Client({}), new DynamoDBClient({}), new SNSClient({})];',
    ].join('\n'),
  );
  const naiveOut = join(dir, 'naive.js');
  const naiveBytes = await bundle(naiveEntry, naiveOut, { bundle: true, platform: 'node', nodePaths: [join(repoRoot, 'node_modules')] });
  const naive = { name: 'naive baseline', bundleBytes: naiveBytes, runner: await runnerFor(dir, 'naive', naiveOut) };

  const bare = join(dir, 'bare.mjs');
  await writeFile(bare, '');
  const all = [...targets, naive];
  const bareTimes: number[] = [];
  const times = new Map(all.map((t) => [t.name, [] as number[]]));
  const ratios = new Map(all.map((t) => [t.name, [] as number[]]));
  timeNode(bare); // warm the file system cache once
  for (let round = 0; round < rounds; round++) {
    const bareMs = timeNode(bare);
    bareTimes.push(bareMs);
    for (const target of all) {
      const ms = timeNode(target.runner);
      times.get(target.name)?.push(ms);
      ratios.get(target.name)?.push(ms / bareMs);
    }
  }
  const row = (t: (typeof all)[number]): ColdStartRow => ({
    name: t.name,
    bundleBytes: t.bundleBytes,
    ratio: summarize(ratios.get(t.name) ?? []),
    importMs: summarize(times.get(t.name) ?? []),
  });
  return { rounds, bareNodeMs: summarize(bareTimes), functions: targets.map(row), naiveBaseline: row(naive) };
}

async function runnerFor(dir: string, name: string, bundlePath: string): Promise<string> {
  const runner = join(dir, `run-${name}.mjs`);
  await writeFile(runner, `await import(${JSON.stringify(bundlePath)});\n`);
  return runner;
}
