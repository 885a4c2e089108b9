import { readFile } from 'node:fs/promises';
import { DEFAULT_POLICY_ID, type Policy } from '../lib/domain/policy';
import { closest } from '../lib/domain/suggest';
import { parsePolicyFile } from '../lib/domain/policy-file';
import { ValidationError } from '../lib/errors';
import { apiPath, type RequestOptions } from './api-client';
import { CliError } from './cli-error';
import { confirm, renderPlan, type PolicyPlan } from './plan';
import { table } from './table';
import { say } from './terminal';
import { required } from './usage';

export type Call = (method: string, path: string, options?: RequestOptions) => Promise<Record<string, unknown>>;
export type Print = (body: unknown, human: () => string) => void;

interface PolicyOptions {
  'if-match'?: string;
  account?: string;
  'consumer-region'?: string;
  json?: boolean;
  yes?: boolean;
  force?: boolean;
}

/** `vpce-gatekeeper policy …`: get, versions, plan, put, evaluate. */
export async function policyCommand(args: string[], values: PolicyOptions, call: Call, print: Print): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'get': {
      const [policyId = ''] = required(rest, 'POLICY_ID');
      const body = await call('GET', apiPath`/policies/${policyId}`);
      const invalid = body.valid === false ? `\nthis version no longer validates, so nothing is decided by it: ${String(body.invalidReason)}` : '';
      return print(body, () => `${policyId} version ${String(body.version)}, by ${String(body.createdBy)} at ${String(body.createdAt)}${invalid}\n${JSON.stringify(body.policy, null, 2)}`);
    }
    case 'versions': {
      const [policyId = ''] = required(rest, 'POLICY_ID');
      const body = await call('GET', apiPath`/policies/${policyId}/versions`);
      const versions = body.versions as Record<string, unknown>[];
      return print(body, () => table(versions.map((v) => ({ VERSION: v.version, BY: v.createdBy, AT: v.createdAt, VALID: v.valid === false ? 'no' : 'yes' }))));
    }
    case 'plan': {
      const [file = ''] = required(rest, 'FILE');
      const plans: PolicyPlan[] = [];
      for (const [policyId, policy] of await readPolicyFile(file)) plans.push(await plan(call, policyId, policy));
      return print({ plans }, () => plans.map(renderPlan).join('\n\n'));
    }
    case 'put': {
      const [file = ''] = required(rest, 'FILE');
      return putPolicies(await readPolicyFile(file), values, call, print);
    }
    case 'evaluate': {
      const [policyId = ''] = required(rest, 'POLICY_ID');
      if (!values.account) throw new CliError('policy evaluate needs --account ACCOUNT_ID', 2);
      // No default: a policy with `regions` decides differently by region, so the caller says which.
      if (!values['consumer-region']) throw new CliError("policy evaluate needs --consumer-region REGION (the consumer endpoint's region)", 2);
      const body = await call('POST', apiPath`/policies/${policyId}/evaluate`, {
        body: { accountId: values.account, region: values['consumer-region'] },
      });
      const evaluation = body.evaluation as Record<string, unknown>;
      const source = body.policyId === null ? 'no policy' : `policy ${String(body.policyId)} version ${String(body.version)}`;
      return print(body, () => `${String(evaluation.outcome)} (${String(evaluation.rule)}, ${source})\n${String(evaluation.reason)}${organizationLine(evaluation.organization)}`);
    }
    default:
      throw new CliError(`unknown policy command '${sub ?? ''}': get, versions, plan, put or evaluate`, 2);
  }
}

/**
 * Saves each policy of a file, as an experienced user of plan/apply tools
 * expects: the plan is always made and shown first, and saving replaces the
 * version the plan was made against (someone saving in between gets 412). In a
 * terminal it asks; elsewhere (a script, CI) it needs --yes, so that nothing is
 * ever saved unseen by accident. A service id the stage does not manage would
 * make a policy that never applies (a typo, most often): it is named, and saved
 * only when the person confirms, or with --force.
 */
async function putPolicies(policies: Map<string, Policy>, values: PolicyOptions, call: Call, print: Print): Promise<void> {
  if (values['if-match'] !== undefined && policies.size !== 1) throw new CliError('--if-match applies to a file with a single policy', 2);
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY) && !values.yes;
  if (!interactive && !values.yes) {
    throw new CliError(
      'policy put shows the plan and asks before saving, and there is no terminal to ask on. ' +
        'Review the plan with `vpce-gatekeeper policy plan FILE`, then save with `policy put FILE --yes`.',
      2,
    );
  }
  const managed = new Set(((await call('GET', '/services')).services as { serviceId: string }[]).map((s) => s.serviceId));
  const unmanaged = [...policies.keys()].filter((policyId) => policyId !== DEFAULT_POLICY_ID && !managed.has(policyId));
  const warning = unmanaged.map((policyId) => unmanagedWarning(policyId, managed)).join(' ');
  if (warning && !interactive && !values.force) throw new CliError(`${warning} Nothing saved; pass --force to save anyway.`);

  const plans: PolicyPlan[] = [];
  for (const [policyId, policy] of policies) {
    const planned = await plan(call, policyId, policy);
    plans.push(planned);
    if (!values.json) say(process.stderr, `${renderPlan(planned)}\n`);
  }
  if (warning && !values.json) say(process.stderr, `warning: ${warning}\n`);
  if (interactive) {
    const question = warning ? `save ${[...policies.keys()].join(', ')}, although ${unmanaged.join(', ')} would never apply?` : `save ${[...policies.keys()].join(', ')}?`;
    if (!(await confirm(question))) throw new CliError('nothing saved');
  }
  const written: Record<string, unknown>[] = [];
  for (const planned of plans) {
    const policy = policies.get(planned.policyId);
    // The version the plan was made against is the one replaced: if someone saved since, the put gets 412.
    const ifMatch = values['if-match'] ?? (planned.baseVersion === null ? undefined : String(planned.baseVersion));
    const headers: Record<string, string> = ifMatch === undefined ? {} : { 'if-match': `"${ifMatch}"` };
    written.push(await call('PUT', apiPath`/policies/${planned.policyId}`, { body: policy, headers }));
  }
  print({ plans, policies: written }, () =>
    written
      .map((p) => `${String(p.policyId)}: version ${String(p.version)} written; ${p.policyId === DEFAULT_POLICY_ID || managed.has(String(p.policyId)) ? "it decides new requests from now on; held requests and any revocations follow at the reconciler's next run" : 'no managed service uses it'}`)
      .join('\n'),
  );
}

/** Why a policy for a service the stage does not manage is most likely a mistake, with the managed id it is closest to. */
function unmanagedWarning(policyId: string, managed: Set<string>): string {
  const guess = closest(policyId, managed);
  const some = [...managed].slice(0, 5).join(', ') + (managed.size > 5 ? ` and ${managed.size - 5} more` : '');
  const hint = guess ? `did you mean ${guess}?` : managed.size ? `it manages ${some}` : 'it manages none yet';
  return `${policyId} is not an endpoint service this stage manages (${hint}), so its policy would never apply.`;
}

async function plan(call: Call, policyId: string, policy: unknown): Promise<PolicyPlan> {
  return (await call('POST', apiPath`/policies/${policyId}/plan`, { body: policy })) as unknown as PolicyPlan;
}

async function readPolicyFile(file: string): Promise<Map<string, Policy>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    return parsePolicyFile(text);
  } catch (error) {
    if (error instanceof ValidationError) throw new CliError(`${file}: ${error.message}`);
    throw error;
  }
}

/** The organization facts an evaluation used: the OU path and status, or why they are unknown. */
function organizationLine(facts: unknown): string {
  if (typeof facts !== 'object' || facts === null) return '';
  const { path, status, member, readAt, error, organizationId } = facts as Record<string, unknown>;
  if (typeof error === 'string') return `\norganization: could not be read (${error})`;
  if (member !== true) return `\norganization: not an account of ${String(organizationId)}, read at ${String(readAt)}`;
  return `\norganization: ${String(path)}, ${String(status)}, read at ${String(readAt)}`;
}
