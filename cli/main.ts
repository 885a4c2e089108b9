import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { parsePolicyFile } from '../lib/domain/policy-file';
import { ApprovalsClient, type ApiResponse, apiPath } from './api-client';
import { table } from './table';
import { confirm, renderPlan, type PolicyPlan } from './plan';

const USAGE = `usage: vpce-gatekeeper [--api URL] [--region REGION] [--json] COMMAND

  pending [--service ID]                    connections waiting for an approver
  services                                  managed services, with connections by state
  show SERVICE_ID ENDPOINT_ID               one connection and its history
  accept SERVICE_ID ENDPOINT_ID --reason R  accept it (approvers only)
  reject SERVICE_ID ENDPOINT_ID --reason R  reject a request still waiting (approvers only)
  revoke SERVICE_ID ENDPOINT_ID --reason R  cut off an admitted connection (approvers only)
  policy get POLICY_ID                      a policy ('default' or a service id) and its version
  policy versions POLICY_ID                 who changed a policy, and when
  policy plan FILE                          what saving each policy in FILE would accept, reject, hold and revoke
  policy put FILE [--if-match VERSION] [--yes]
                                            write each policy in FILE (keyed by service id or 'default');
                                            in a terminal, shows the plan and asks first (--yes: don't ask)
  policy evaluate POLICY_ID --account ID --consumer-region R
                                            what the policy would decide, changing nothing

--api defaults to $VPCE_GATEKEEPER_API, else http://127.0.0.1:3000 (the local stack).
Requests are signed with SigV4 for execute-api, with the default AWS credential chain.`;

/** A failure the user can act on: printed as is, exit code 1 (2 for usage). */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      api: { type: 'string' },
      region: { type: 'string' },
      json: { type: 'boolean', default: false },
      service: { type: 'string' },
      reason: { type: 'string' },
      'if-match': { type: 'string' },
      account: { type: 'string' },
      'consumer-region': { type: 'string' },
      yes: { type: 'boolean', short: 'y', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || !command) throw new CliError(USAGE, values.help ? 0 : 2);
  const baseUrl = values.api ?? process.env.VPCE_GATEKEEPER_API ?? 'http://127.0.0.1:3000';
  const client = new ApprovalsClient({ baseUrl, region: values.region ?? regionOf(baseUrl), credentials: defaultProvider() });
  const call = async (method: string, path: string, options?: Parameters<ApprovalsClient['request']>[2]) => {
    let response: ApiResponse;
    try {
      response = await client.request(method, path, options);
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
      throw new CliError(`cannot call ${baseUrl}: ${error instanceof Error ? error.message : String(error)}${cause}`);
    }
    if (response.status >= 400) throw new CliError(describeFailure(response));
    return response.body as Record<string, unknown>;
  };
  const print = (body: unknown, human: () => string) => {
    process.stdout.write(`${values.json ? JSON.stringify(body, null, 2) : human()}\n`);
  };

  switch (command) {
    case 'pending': {
      const connections: Record<string, unknown>[] = [];
      let cursor: string | undefined;
      do {
        const page = await call('GET', '/connections', { query: { state: 'pendingAcceptance', serviceId: values.service, limit: '100', cursor } });
        connections.push(...(page.connections as Record<string, unknown>[]));
        cursor = (page.nextCursor as string | null) ?? undefined;
      } while (cursor);
      return print({ connections }, () =>
        connections.length
          ? table(connections.map((c) => ({ SERVICE: c.serviceId, ENDPOINT: c.endpointId, ACCOUNT: c.ownerAccountId, REGION: c.region, SINCE: c.createdAt, WHY: decisionOf(c).reason })))
          : 'nothing is waiting for an approver',
      );
    }
    case 'services': {
      const body = await call('GET', '/services');
      const services = body.services as { serviceId: string; connections: Record<string, number> }[];
      return print(body, () => table(services.map((s) => ({ SERVICE: s.serviceId, ...countsOf(s.connections) }))));
    }
    case 'show': {
      const [serviceId = '', endpointId = ''] = required(args, 'SERVICE_ID', 'ENDPOINT_ID');
      const body = await call('GET', apiPath`/services/${serviceId}/connections/${endpointId}`);
      return print(body, () => showConnection(body));
    }
    case 'accept':
    case 'reject':
    case 'revoke': {
      const [serviceId = '', endpointId = ''] = required(args, 'SERVICE_ID', 'ENDPOINT_ID');
      if (!values.reason) throw new CliError(`${command} needs --reason "why"`, 2);
      const body = await call('POST', apiPath`/services/${serviceId}/connections/${endpointId}/${command}`, { body: { reason: values.reason } });
      return print(body, () => `${command === 'revoke' ? 'revok' : command}ed ${endpointId}: now ${String(body.state)}\n\n${showConnection(body)}`);
    }
    case 'policy':
      return policyCommand(args, values, call, print);
    default:
      throw new CliError(`unknown command '${command}'\n\n${USAGE}`, 2);
  }
}

type Call = (method: string, path: string, options?: Parameters<ApprovalsClient['request']>[2]) => Promise<Record<string, unknown>>;
type Print = (body: unknown, human: () => string) => void;

async function policyCommand(
  args: string[],
  values: { 'if-match'?: string; account?: string; 'consumer-region'?: string; json?: boolean; yes?: boolean },
  call: Call,
  print: Print,
): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'get': {
      const [policyId = ''] = required(rest, 'POLICY_ID');
      const body = await call('GET', apiPath`/policies/${policyId}`);
      return print(body, () => `${policyId} version ${String(body.version)}, by ${String(body.createdBy)} at ${String(body.createdAt)}\n${JSON.stringify(body.policy, null, 2)}`);
    }
    case 'versions': {
      const [policyId = ''] = required(rest, 'POLICY_ID');
      const body = await call('GET', apiPath`/policies/${policyId}/versions`);
      const versions = body.versions as Record<string, unknown>[];
      return print(body, () => table(versions.map((v) => ({ VERSION: v.version, BY: v.createdBy, AT: v.createdAt }))));
    }
    case 'plan': {
      const [file = ''] = required(rest, 'FILE');
      const plans: PolicyPlan[] = [];
      for (const [policyId, policy] of parsePolicyFile(await readText(file))) plans.push(await plan(call, policyId, policy));
      return print({ plans }, () => plans.map(renderPlan).join('\n\n'));
    }
    case 'put': {
      const [file = ''] = required(rest, 'FILE');
      const policies = parsePolicyFile(await readText(file));
      if (values['if-match'] !== undefined && policies.size !== 1) throw new CliError('--if-match applies to a file with a single policy', 2);
      // A person at a terminal sees the plan and says yes; scripts (no TTY, --json, --yes) are not asked.
      const ask = process.stdin.isTTY && process.stderr.isTTY && !values.yes && !values.json;
      const confirmed = new Map<string, string | undefined>();
      if (ask) {
        for (const [policyId, policy] of policies) {
          const planned = await plan(call, policyId, policy);
          process.stderr.write(`${renderPlan(planned)}\n\n`);
          // The version the plan was made against is the one replaced: if someone saves first, the put gets 412.
          confirmed.set(policyId, values['if-match'] ?? (planned.baseVersion === null ? undefined : String(planned.baseVersion)));
        }
        if (!(await confirm(`save ${[...policies.keys()].join(', ')}?`))) throw new CliError('nothing saved');
      }
      const written: Record<string, unknown>[] = [];
      for (const [policyId, policy] of policies) {
        // Without --if-match, replace the version the plan showed, else whatever version is current now.
        const ifMatch = confirmed.has(policyId) ? confirmed.get(policyId) : (values['if-match'] ?? (await currentVersion(call, policyId)));
        const headers: Record<string, string> = ifMatch === undefined ? {} : { 'if-match': `"${ifMatch}"` };
        written.push(await call('PUT', apiPath`/policies/${policyId}`, { body: policy, headers }));
      }
      return print({ policies: written }, () => written.map((p) => `${String(p.policyId)}: version ${String(p.version)} written`).join('\n'));
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

async function plan(call: Call, policyId: string, policy: unknown): Promise<PolicyPlan> {
  return (await call('POST', apiPath`/policies/${policyId}/plan`, { body: policy })) as unknown as PolicyPlan;
}

async function currentVersion(call: Call, policyId: string): Promise<string | undefined> {
  try {
    return String((await call('GET', apiPath`/policies/${policyId}`)).version);
  } catch (error) {
    if (error instanceof CliError && error.message.startsWith('404 ')) return undefined;
    throw error;
  }
}

function showConnection(c: Record<string, unknown>): string {
  const decision = decisionOf(c);
  const summary = table([
    { FIELD: 'service', VALUE: c.serviceId },
    { FIELD: 'endpoint', VALUE: c.endpointId },
    { FIELD: 'account', VALUE: c.ownerAccountId },
    { FIELD: 'region', VALUE: c.region },
    { FIELD: 'state', VALUE: c.state },
    { FIELD: 'decision', VALUE: decision.outcome ? `${String(decision.outcome)} by ${String(decision.decidedBy)} (${String(decision.rule)})` : '' },
    { FIELD: 'why', VALUE: decision.reason },
  ]);
  const history = (c.history as Record<string, unknown>[]).map(({ at, type, ...rest }) => ({
    AT: at,
    EVENT: type,
    DETAIL: Object.entries(rest).map(([key, value]) => `${key}=${String(value)}`).join(' '),
  }));
  return `${summary}\n\n${table(history)}`;
}

function decisionOf(c: Record<string, unknown>): Record<string, unknown> {
  return (c.decision as Record<string, unknown> | undefined) ?? {};
}

function countsOf(counts: Record<string, number>): Record<string, number> {
  const states = ['pendingAcceptance', 'pending', 'available', 'rejected', 'deleted'];
  return Object.fromEntries(states.map((state) => [state.toUpperCase(), counts[state] ?? 0]));
}

function required(args: string[], ...names: string[]): string[] {
  if (args.length !== names.length) throw new CliError(`expected ${names.join(' ')}\n\n${USAGE}`, 2);
  return args;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** An execute-api URL names its region; anything else (the local stack) signs for AWS_REGION or us-east-1. */
function regionOf(baseUrl: string): string {
  const fromHost = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(baseUrl).hostname)?.[1];
  return fromHost ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

function describeFailure(response: ApiResponse): string {
  const error = (response.body as { error?: { code?: string; message?: string }; message?: string } | undefined) ?? {};
  const message = error.error?.message ?? error.message ?? JSON.stringify(response.body);
  return `${response.status} ${error.error?.code ?? ''}: ${message}`.replace(' :', ':');
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof CliError) {
    (error.exitCode === 0 ? process.stdout : process.stderr).write(`${error.exitCode === 0 ? '' : 'vpce-gatekeeper: '}${error.message}\n`);
    process.exit(error.exitCode);
  }
  process.stderr.write(`vpce-gatekeeper: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

/** The organization facts an evaluation used: the OU path and status, or why they are unknown. */
function organizationLine(facts: unknown): string {
  if (typeof facts !== 'object' || facts === null) return '';
  const { path, status, member, readAt, error, organizationId } = facts as Record<string, unknown>;
  if (typeof error === 'string') return `\norganization: could not be read (${error})`;
  if (member !== true) return `\norganization: not an account of ${String(organizationId)}, read at ${String(readAt)}`;
  return `\norganization: ${String(path)}, ${String(status)}, read at ${String(readAt)}`;
}
