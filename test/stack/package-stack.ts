import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// Packages the real serverless.yml (offline, without AWS credentials) for the template tests, and
// reads what it wrote.

export const PACKAGE_TIMEOUT_MS = 180_000;
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const serverlessBin = join(repoRoot, 'node_modules', 'serverless', 'bin', 'serverless.js');

export interface CfnResource {
  Type: string;
  Properties: Record<string, unknown>;
  Condition?: string;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
export interface Template {
  Parameters?: Record<string, { Default?: string; MaxLength?: number; AllowedPattern?: string; Description?: string }>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, CfnResource>;
  Outputs: Record<string, { Value: unknown; Condition?: string }>;
}
export interface Statement {
  Sid?: string;
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}
export interface PolicyDocument {
  Statement: Statement[];
}

/** The directories packaged into so far; `removePackages` deletes them. */
const packaged: string[] = [];

/**
 * Runs `serverless package` into a fresh directory with these `--param`s, with no AWS credentials
 * in reach. Throws with what serverless printed when it refuses.
 */
export async function packageStack(params: string[], stage = 'test'): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-package-'));
  packaged.push(outDir);
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
  for (const name of ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) delete env[name];
  const args = [serverlessBin, 'package', '--stage', stage, '--package', outDir, ...params.map((param) => `--param=${param}`)];
  try {
    await promisify(execFile)(process.execPath, args, { cwd: repoRoot, env, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    // Only what serverless printed: the command line would echo the parameters back.
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`serverless package failed:\n${stdout}\n${stderr}`, { cause: error });
  }
  return outDir;
}

export async function readTemplate(outDir: string): Promise<Template> {
  return JSON.parse(await readFile(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
}

export async function removePackages(): Promise<void> {
  await Promise.all(packaged.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Whether a template condition holds; only conditions over literals (as packaging leaves them). */
export function conditionHolds(template: Template, name: string): boolean {
  const definition = template.Conditions?.[name];
  if (definition === undefined) throw new Error(`no condition ${name} in the template`);
  return evaluateCondition(template, definition);
}

function evaluateCondition(template: Template, condition: unknown): boolean {
  const [[fn, args] = []] = Object.entries(condition as Record<string, unknown[]>);
  if (fn === 'Condition') return conditionHolds(template, String(args));
  if (fn === 'Fn::Equals') {
    const [a, b] = args as unknown[];
    if (typeof a !== 'string' || typeof b !== 'string') throw new Error(`Fn::Equals over something else than literals: ${JSON.stringify(args)}`);
    return a === b;
  }
  if (fn === 'Fn::Not') return !evaluateCondition(template, (args as unknown[])[0]);
  if (fn === 'Fn::And') return (args as unknown[]).every((arg) => evaluateCondition(template, arg));
  if (fn === 'Fn::Or') return (args as unknown[]).some((arg) => evaluateCondition(template, arg));
  throw new Error(`not a condition function: ${JSON.stringify(condition)}`);
}

const NO_VALUE = Symbol('AWS::NoValue');

/** A value with its Fn::If picked by the template's conditions and AWS::NoValue left out. */
export function withConditionsApplied<T>(template: Template, value: T): T {
  const apply = (item: unknown): unknown => {
    if (Array.isArray(item)) return item.map(apply).filter((entry) => entry !== NO_VALUE);
    if (item === null || typeof item !== 'object') return item;
    const object = item as Record<string, unknown>;
    if (object.Ref === 'AWS::NoValue') return NO_VALUE;
    if ('Fn::If' in object) {
      const [name, whenTrue, whenFalse] = object['Fn::If'] as [string, unknown, unknown];
      return apply(conditionHolds(template, name) ? whenTrue : whenFalse);
    }
    const entries = Object.entries(object).map(([key, entry]) => [key, apply(entry)] as const);
    return Object.fromEntries(entries.filter(([, entry]) => entry !== NO_VALUE));
  };
  return apply(value) as T;
}

/** The policy documents a role gets inline: its own Policies, and the AWS::IAM::Policy resources in force that name it. */
export function inlinePolicies(template: Template, roleLogicalId: string): PolicyDocument[] {
  const role = template.Resources[roleLogicalId];
  if (!role) throw new Error(`no resource ${roleLogicalId} in the template`);
  const own = ((role.Properties.Policies ?? []) as { PolicyDocument: PolicyDocument }[]).map((policy) => policy.PolicyDocument);
  const attached = Object.values(template.Resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy' && (!resource.Condition || conditionHolds(template, resource.Condition)))
    .filter((resource) => (resource.Properties.Roles as unknown[]).some((ref) => (ref as { Ref?: string }).Ref === roleLogicalId))
    .map((resource) => resource.Properties.PolicyDocument as PolicyDocument);
  return withConditionsApplied(template, [...own, ...attached]);
}
