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

/**
 * What Lambda itself sets in a function's environment (nodejs22.x, on-demand). Nothing from this
 * machine is passed on: NODE_EXTRA_CA_CERTS, for one, makes every node process load a CA bundle
 * (about 40 ms), which Lambda never does, and which would flatter every ratio.
 */
function lambdaEnv(functionName: string, taskRoot: string): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'ASIABENCHBENCHBENCH0',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_SESSION_TOKEN: 'bench',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: `vpce-gatekeeper-bench-${functionName}`,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/vpce-gatekeeper-bench-${functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef',
    AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9001',
    AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    LAMBDA_TASK_ROOT: taskRoot,
    LAMBDA_RUNTIME_DIR: '/var/runtime',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    PATH: '/usr/local/bin:/usr/bin/:/bin:/opt/bin',
    _HANDLER: 'index.handler',
    // This machine runs Node.js 20, which the SDK would warn about; Lambda's Node.js 22 does not.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

// Template values that CloudFormation resolves at deploy time (!Ref, ${file(...)}): well-formed stand-ins.
const DEPLOY_TIME_VALUES: Record<string, string> = {
  TABLE_NAME: 'vpce-gatekeeper-bench-state',
  OUTBOUND_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-bench-decisions',
  DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/vpce-gatekeeper-bench-notifications-dlq',
  MANAGED_SERVICE_IDS: 'vpce-svc-0123456789abcdef0',
  // No spokes: the stage's own account and Region only (stack/spokes.cjs).
  SPOKES: '',
};

interface FunctionDefinition {
  handler: string;
  environment?: Record<string, unknown>;
}

interface Template {
  service: string;
  params: { default: Record<string, unknown> };
  provider: { environment?: Record<string, unknown> };
  functions: Record<string, FunctionDefinition | string>;
}

/** The function's environment as serverless.yml gives it (provider's, then the function's own), at its defaults. */
function templateEnv(template: Template, functionName: string): Record<string, string> {
  const fn = template.functions[functionName];
  const declared = { ...template.provider.environment, ...(typeof fn === 'object' ? fn.environment : {}) };
  return Object.fromEntries(
    Object.entries(declared).map(([name, value]) => {
      if (name in DEPLOY_TIME_VALUES) return [name, DEPLOY_TIME_VALUES[name] as string];
      const resolved = String(value)
        .replace(/\$\{param:(\w+)\}/g, (_, param: string) => String(template.params.default[param] ?? ''))
        .replace(/\$\{self:service\}/g, template.service)
        .replace(/\$\{sls:stage\}/g, 'bench');
      if (resolved.includes('${')) throw new Error(`cold-start bench: no stand-in for ${name} = ${resolved}; add one to DEPLOY_TIME_VALUES`);
      return [name, resolved];
    }),
  );
}

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

async function readTemplate(): Promise<Template> {
  // CloudFormation tags (!Ref, !GetAtt, !Sub) are read as plain values; DEPLOY_TIME_VALUES stands in for them.
  return parseYaml(await readFile(join(repoRoot, 'serverless.yml'), 'utf8'), { logLevel: 'silent' }) as Template;
}

/**
 * Parameters of a stage with every optional function on: the Slack functions (stack/slack.cjs)
 * exist only when a stage configures Slack, and are measured as such a stage deploys them.
 */
const OPTIONAL_FUNCTION_PARAMS: Record<string, string> = {
  slackChannel: 'C0123456789',
  slackApprovers: 'U0123ABCD',
  slackBotTokenParameter: '/vpce-gatekeeper/bench/slack-bot-token',
  slackSigningSecretParameter: '/vpce-gatekeeper/bench/slack-signing-secret',
};

/** A function serverless.yml pulls in from a stack/*.cjs (`${file(./stack/x.cjs):export, null}`), resolved as osls would. */
async function resolveFunction(template: Template, fn: FunctionDefinition | string): Promise<FunctionDefinition | undefined> {
  if (typeof fn !== 'string') return fn;
  const [, file, exported] = /^\$\{file\(\.\/(stack\/[\w-]+\.cjs)\):(\w+), null\}$/.exec(fn) ?? [];
  if (!file || !exported) throw new Error(`cold-start bench: cannot resolve the function ${fn}`);
  const resolveVariable = async (name: string) => {
    if (name === 'self:service') return template.service;
    if (name === 'sls:stage') return 'bench';
    const param = name.replace(/^param:/, '');
    return OPTIONAL_FUNCTION_PARAMS[param] ?? template.params.default[param] ?? '';
  };
  const define = (require(join(repoRoot, file)) as Record<string, (context: unknown) => Promise<FunctionDefinition | null>>)[exported];
  return (await define?.({ resolveVariable })) ?? undefined;
}

/** The functions of serverless.yml: name, handler source file, and the environment Lambda would give it. */
async function stackFunctions(dir: string): Promise<{ name: string; entry: string; env: Record<string, string> }[]> {
  const template = await readTemplate();
  const functions: [string, FunctionDefinition][] = [];
  for (const [name, fn] of Object.entries(template.functions)) {
    const resolved = await resolveFunction(template, fn);
    if (resolved) functions.push([name, resolved]);
    template.functions[name] = resolved ?? { handler: '' };
  }
  return functions.map(([name, fn]) => ({
    name,
    entry: join(repoRoot, `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.ts`),
    env: { ...lambdaEnv(name, dir), ...templateEnv(template, name) },
  }));
}

async function bundle(entry: string, outfile: string, options: Record<string, unknown>): Promise<number> {
  await build({ ...options, entryPoints: [entry], outfile, logLevel: 'silent' });
  return (await stat(outfile)).size;
}

/** Milliseconds for `node file` to run to completion, with exactly the environment given. */
function timeNode(file: string, env: Record<string, string>): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [file], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`node ${file} failed: ${result.stderr.toString().slice(-800)}`);
  return elapsed;
}

/** Builds every function as `serverless package` does, plus the naive baseline, and times their imports. */
export async function measureColdStart(rounds: number): Promise<ColdStartResult> {
  const dir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-bench-'));
  const targets: { name: string; bundleBytes: number; runner: string; env: Record<string, string> }[] = [];

  const functions = await stackFunctions(dir);
  for (const fn of functions) {
    // Built as `serverless package` builds it, source map included: the template runs every
    // function with NODE_OPTIONS=--enable-source-maps.
    const outfile = join(dir, `${fn.name}.mjs`);
    const bundleBytes = await bundle(fn.entry, outfile, esbuildOptions);
    targets.push({ name: fn.name, bundleBytes, runner: await runnerFor(dir, fn.name, outfile), env: fn.env });
  }
  // The bare node and the naive baseline get the notification function's environment.
  const baseEnv = functions.find((fn) => fn.name === 'onConnectionNotification')?.env ?? functions[0]?.env ?? {};

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
  const naive = { name: 'naive baseline', bundleBytes: naiveBytes, runner: await runnerFor(dir, 'naive', naiveOut), env: baseEnv };

  const bare = join(dir, 'bare.mjs');
  await writeFile(bare, '');
  const all = [...targets, naive];
  const bareTimes: number[] = [];
  const times = new Map(all.map((t) => [t.name, [] as number[]]));
  const ratios = new Map(all.map((t) => [t.name, [] as number[]]));
  for (const target of all) timeNode(target.runner, target.env); // warm the file system cache once
  for (let round = 0; round < rounds; round++) {
    const bareMs = timeNode(bare, baseEnv);
    bareTimes.push(bareMs);
    for (const target of all) {
      const ms = timeNode(target.runner, target.env);
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
