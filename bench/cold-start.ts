import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { parse as parseYaml } from 'yaml';
import { beyondFloor, floorEntry, sdkClientsIn, type PartBeyondFloor, type SdkClientUse } from './sdk-floor';
import { summarize, type Summary } from './stats';

// Cold start, per function of the packaged stack: the time a fresh node process takes to start
// and import the function's bundle (running its initialisation), against two yardsticks taken in
// the same round: the function's SDK floor (the AWS SDK clients and commands its bundle contains,
// alone, built with the same esbuild settings, each client constructed), and a bare node.

const require = createRequire(import.meta.url);
const { esbuildOptions } = require('../esbuild.config.cjs') as { esbuildOptions: BuildOptions };

const repoRoot = resolve(import.meta.dirname, '..');

/**
 * What Lambda itself sets in a function's environment (nodejs22.x, on-demand). Nothing from this
 * machine is passed on: NODE_EXTRA_CA_CERTS, for one, makes every node process load a CA bundle
 * (about 40 ms), which Lambda's Node.js 20 and later runtimes no longer do by default.
 */
function lambdaEnv(functionName: string, taskRoot: string, memoryMb: number): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'ASIABENCHBENCHBENCH0',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_SESSION_TOKEN: 'bench',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: `vpce-gatekeeper-bench-${functionName}`,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/vpce-gatekeeper-bench-${functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef',
    AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9001',
    AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    AWS_XRAY_DAEMON_ADDRESS: '169.254.79.129:2000',
    _AWS_XRAY_DAEMON_ADDRESS: '169.254.79.129',
    _AWS_XRAY_DAEMON_PORT: '2000',
    LAMBDA_TASK_ROOT: taskRoot,
    LAMBDA_RUNTIME_DIR: '/var/runtime',
    // CommonJS lookups only; an ES module bundle resolves nothing through it.
    NODE_PATH: `/opt/nodejs/node22/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:${taskRoot}`,
    LD_LIBRARY_PATH: '/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    PATH: '/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin',
    _HANDLER: 'index.handler',
    // This machine runs Node.js 20, which the SDK would warn about; Lambda's Node.js 22 does not.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

/**
 * The flags Lambda's Node.js runtime starts node with (its bootstrap script): the heap sized from
 * the function's memory, a tenth of it for the young generation.
 */
function lambdaNodeArgs(memoryMb: number): string[] {
  const newSpace = Math.floor(memoryMb / 10);
  return ['--expose-gc', '--max-http-header-size=81920', `--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${memoryMb - newSpace}`];
}

// Template values that CloudFormation resolves at deploy time (!Ref, ${file(...)}): well-formed stand-ins.
const DEPLOY_TIME_VALUES: Record<string, string> = {
  TABLE_NAME: 'vpce-gatekeeper-bench-state',
  OUTBOUND_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-bench-decisions',
  INBOUND_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-bench-notifications',
  DEAD_LETTER_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/vpce-gatekeeper-bench-notifications-dlq',
  MANAGED_SERVICE_IDS: 'vpce-svc-0123456789abcdef0',
  HUB_ACCOUNT_ID: '000000000000',
  // No spokes: the stage's own account and Region only (stack/spokes.cjs).
  SPOKES: '',
};

interface FunctionDefinition {
  handler: string;
  memorySize?: number;
  environment?: Record<string, unknown>;
}

interface Template {
  service: string;
  params: { default: Record<string, unknown> };
  provider: { environment?: Record<string, unknown>; memorySize?: number };
  functions: Record<string, FunctionDefinition | string>;
}

/** The function's environment as serverless.yml gives it (provider's, then the function's own), at its defaults. */
function templateEnv(template: Template, functionName: string): Record<string, string> {
  const fn = template.functions[functionName];
  const declared = { ...template.provider.environment, ...(typeof fn === 'object' ? fn.environment : {}) };
  return Object.fromEntries(
    Object.entries(declared).map(([name, value]) => {
      if (name in DEPLOY_TIME_VALUES) return [name, DEPLOY_TIME_VALUES[name] as string];
      if (typeof value === 'object' && value !== null) throw new Error(`cold-start bench: no stand-in for ${name}, which CloudFormation resolves (${JSON.stringify(value)}); add one to DEPLOY_TIME_VALUES`);
      const resolved = String(value)
        .replace(/\$\{param:(\w+)\}/g, (_, param: string) => String(template.params.default[param] ?? ''))
        .replace(/\$\{self:service\}/g, template.service)
        .replace(/\$\{sls:stage\}/g, 'bench');
      if (resolved.includes('${')) throw new Error(`cold-start bench: no stand-in for ${name} = ${resolved}; add one to DEPLOY_TIME_VALUES`);
      return [name, resolved];
    }),
  );
}

/** One function's SDK floor: its clients and commands, alone. */
export interface SdkFloor {
  bundleBytes: number;
  clients: SdkClientUse[];
  importMs: Summary;
  /** The floor's time over a bare node process's, per round. */
  ratio: Summary;
}

export interface ColdStartRow {
  name: string;
  bundleBytes: number;
  /** Wall time over a bare node process's, per round. */
  ratio: Summary;
  /** Wall time of the whole process: start, import, exit. */
  importMs: Summary;
  /** Absent from results taken before the bench measured floors. */
  floor?: SdkFloor;
  /** Wall time over the floor's, paired round by round: the target's measure. */
  ratioToFloor?: Summary;
  /**
   * CPU time (user and system, all of the process's threads) over the floor's, paired round by
   * round: steadier than wall time on a busy machine, as it does not count the time spent waiting
   * for a core; it does count the threads that compile and collect garbage beside the main one.
   */
  cpuRatioToFloor?: Summary;
  /** What the bundle holds beyond its floor, by package or source folder, largest first. */
  beyondFloor?: PartBeyondFloor[];
}

export interface ColdStartResult {
  rounds: number;
  /** The node that started the functions (absent from results taken before the bench could choose). */
  node?: string;
  bareNodeMs: Summary;
  functions: ColdStartRow[];
  naiveBaseline: ColdStartRow;
}

async function readTemplate(): Promise<Template> {
  // CloudFormation tags (!Ref, !GetAtt, !Sub) are read as plain values; DEPLOY_TIME_VALUES stands in for them.
  return parseYaml(await readFile(join(repoRoot, 'serverless.yml'), 'utf8'), { logLevel: 'silent' }) as Template;
}

interface StackFunction {
  name: string;
  /** The handler's source, and its module path in the deployed package (`handlers/http-api`). */
  entry: string;
  modulePath: string;
  memoryMb: number;
  template: Template;
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

/** The functions of serverless.yml (those of stack/*.cjs included), each with its handler's source and its memory. */
async function stackFunctions(): Promise<StackFunction[]> {
  const template = await readTemplate();
  const functions: [string, FunctionDefinition][] = [];
  for (const [name, fn] of Object.entries(template.functions)) {
    const resolved = await resolveFunction(template, fn);
    if (resolved) functions.push([name, resolved]);
    template.functions[name] = resolved ?? { handler: '' };
  }
  return functions.map(([name, fn]) => {
    const modulePath = fn.handler.slice(0, fn.handler.lastIndexOf('.'));
    return { name, entry: join(repoRoot, `${modulePath}.ts`), modulePath, memoryMb: fn.memorySize ?? template.provider.memorySize ?? 1024, template };
  });
}

/** A module as Lambda would start it: the node binary, its flags, the module's runner, the environment. */
interface Target {
  name: string;
  node: string;
  bundleBytes: number;
  runner: string;
  nodeArgs: string[];
  env: Record<string, string>;
  cwd: string;
}

/**
 * Builds `options` to `outfile` (with its source map beside it, as `serverless package` writes
 * them), and returns the bundle's size and metafile.
 */
async function bundle(options: BuildOptions, outfile: string): Promise<{ bytes: number; metafile: Metafile }> {
  const result = await build({ ...options, outfile, metafile: true, logLevel: 'silent' });
  const output = result.metafile.outputs[Object.keys(result.metafile.outputs).find((path) => resolve(path) === resolve(outfile)) ?? ''];
  if (!output) throw new Error(`esbuild wrote no ${outfile}`);
  return { bytes: output.bytes, metafile: result.metafile };
}

/**
 * A runner: imports the module (if any) as Lambda's runtime does, by file URL from outside the task
 * root, checks that it exports a handler, and prints the CPU time the process has used.
 */
async function writeRunner(runner: string, module: string | undefined, { handler = true } = {}): Promise<void> {
  const lines = [];
  if (module) lines.push(`const module = await import(${JSON.stringify(pathToFileURL(module).href)});`);
  if (module && handler) lines.push("if (typeof module.handler !== 'function') throw new Error('the module exports no handler');");
  lines.push('const usage = process.resourceUsage();', 'process.stdout.write(String((usage.userCPUTime + usage.systemCPUTime) / 1000));', '');
  await mkdir(dirname(runner), { recursive: true });
  await writeFile(runner, lines.join('\n'));
}

/**
 * A function's deployed package, laid out as Lambda has it: the bundle at its handler's path under
 * a task root (`/var/task/handlers/http-api.mjs`), and its runner.
 */
async function deployedPackage(dir: string, label: string, modulePath: string, options: BuildOptions, fn: StackFunction, node: string) {
  const taskRoot = join(dir, label, 'task');
  const outfile = join(taskRoot, `${modulePath}.mjs`);
  await mkdir(dirname(outfile), { recursive: true });
  const built = await bundle(options, outfile);
  const runner = join(dir, label, 'runtime.mjs');
  await writeRunner(runner, outfile);
  const env = { ...lambdaEnv(fn.name, taskRoot, fn.memoryMb), ...templateEnv(fn.template, fn.name) };
  const target: Target = { name: label, node, bundleBytes: built.bytes, runner, nodeArgs: lambdaNodeArgs(fn.memoryMb), env, cwd: taskRoot };
  return { target, metafile: built.metafile };
}

/** One start of a process: its wall time (start, run, exit) and the CPU time it used. */
interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** Starts node on `target`'s runner as Lambda would start it, and times it to its exit. */
function timeNode(target: Pick<Target, 'node' | 'runner' | 'nodeArgs' | 'env' | 'cwd'>): Sample {
  const started = process.hrtime.bigint();
  const result = spawnSync(target.node, [...target.nodeArgs, target.runner], { env: target.env, cwd: target.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const cpuMs = Number(result.stdout.toString());
  if (result.status !== 0 || !Number.isFinite(cpuMs)) throw new Error(`node ${target.runner} failed: ${result.stderr.toString().slice(-800)}`);
  return { wallMs, cpuMs };
}

/** Which parts of the cold-start bench to run: all functions, or those named. */
export interface ColdStartOptions {
  rounds: number;
  functions?: string[];
  /** The node binary to start (default: this process's): Lambda runs Node.js 22, this machine may not. */
  node?: string;
  log?: (message: string) => void;
}

/**
 * Builds every function as `serverless package` does, and beside each its SDK floor; then, round
 * by round, times a bare node, each function and its floor (in alternating order), and the naive
 * baseline. Ratios are taken within a round, so that what the machine does meanwhile cancels out.
 */
export async function measureColdStart({ rounds, functions: only, node = process.execPath, log = () => {} }: ColdStartOptions): Promise<ColdStartResult> {
  const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  if (!/^v\d+\./.test(nodeVersion)) throw new Error(`${node} is not a node binary`);
  const dir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-bench-'));
  const all = await stackFunctions();
  const unknown = only?.filter((name) => !all.some((fn) => fn.name === name)) ?? [];
  if (unknown.length) throw new Error(`no function ${unknown.join(', ')} in serverless.yml (${all.map((fn) => fn.name).join(', ')})`);
  const functions = only ? all.filter((fn) => only.includes(fn.name)) : all;

  const measured: { fn: StackFunction; target: Target; floor: Target; clients: SdkClientUse[]; beyond: PartBeyondFloor[] }[] = [];
  for (const fn of functions) {
    // Built as `serverless package` builds it, source map included: the template runs every
    // function with NODE_OPTIONS=--enable-source-maps.
    const { target, metafile } = await deployedPackage(dir, fn.name, fn.modulePath, { ...esbuildOptions, entryPoints: [fn.entry] }, fn, node);
    const clients = sdkClientsIn(metafile);
    const floorOptions: BuildOptions = {
      ...esbuildOptions,
      stdin: { contents: floorEntry(clients), resolveDir: repoRoot, sourcefile: `${fn.name}-sdk-floor.mjs`, loader: 'js' },
    };
    const floor = await deployedPackage(dir, `${fn.name}-floor`, fn.modulePath, floorOptions, fn, node);
    measured.push({ fn, target, floor: floor.target, clients, beyond: beyondFloor(metafile, floor.metafile) });
    log(`${fn.name}: ${(target.bundleBytes / 1024).toFixed(0)} KiB, its SDK floor ${(floor.target.bundleBytes / 1024).toFixed(0)} KiB (${clients.map((c) => `${c.client} + ${c.commands.length} commands`).join(', ')})`);
  }
  // The bare node and the naive baseline get the first function's environment and flags.
  const base = measured[0]?.target;
  if (!base) throw new Error('no function to measure');

  // The naive baseline: the three clients imported the plain way, esbuild's defaults.
  const naiveOut = join(dir, 'naive', 'naive.js');
  const naiveBuilt = await bundle(
    {
      bundle: true,
      platform: 'node',
      stdin: {
        contents: [
          "import { EC2Client } from '@aws-sdk/client-ec2';",
          "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
          "import { SNSClient } from '@aws-sdk/client-sns';",
          'export const clients = [new EC2Client({}), new DynamoDBClient({}), new SNSClient({})];',
        ].join('\n'),
        resolveDir: repoRoot,
        sourcefile: 'naive-entry.mjs',
      },
    },
    naiveOut,
  );
  const naive: Target = { ...base, name: 'naive baseline', bundleBytes: naiveBuilt.bytes, runner: join(dir, 'naive', 'runtime.mjs') };
  await writeRunner(naive.runner, naiveOut, { handler: false });
  const bare: Target = { ...base, name: 'bare node', runner: join(dir, 'bare', 'runtime.mjs') };
  await writeRunner(bare.runner, undefined);

  const targets = [bare, ...measured.flatMap((m) => [m.target, m.floor]), naive];
  const samples = new Map(targets.map((t) => [t.name, [] as Sample[]]));
  for (const target of targets) timeNode(target); // warm the file system cache once
  for (let round = 0; round < rounds; round++) {
    // Whichever runs second in a pair may find the machine in another mood: alternate.
    const order = [bare, ...measured.flatMap((m) => (round % 2 === 0 ? [m.floor, m.target] : [m.target, m.floor])), naive];
    for (const target of order) samples.get(target.name)?.push(timeNode(target));
    log(`round ${round + 1} of ${rounds}`);
  }
  const of = (t: Target) => samples.get(t.name) ?? [];
  /** `a`'s samples over `b`'s, round by round. */
  const paired = (a: Target, b: Target, measure: keyof Sample) => summarize(of(a).map((sample, round) => sample[measure] / (of(b)[round]?.[measure] ?? Number.NaN)));
  const row = (t: Target) => ({ name: t.name, bundleBytes: t.bundleBytes, ratio: paired(t, bare, 'wallMs'), importMs: summarize(of(t).map((sample) => sample.wallMs)) });
  return {
    rounds,
    node: nodeVersion,
    bareNodeMs: summarize(of(bare).map((sample) => sample.wallMs)),
    functions: measured.map((m) => ({
      ...row(m.target),
      floor: { bundleBytes: m.floor.bundleBytes, clients: m.clients, importMs: summarize(of(m.floor).map((sample) => sample.wallMs)), ratio: paired(m.floor, bare, 'wallMs') },
      ratioToFloor: paired(m.target, m.floor, 'wallMs'),
      cpuRatioToFloor: paired(m.target, m.floor, 'cpuMs'),
      beyondFloor: m.beyond,
    })),
    naiveBaseline: row(naive),
  };
}
