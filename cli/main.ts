import { parseArgs } from 'node:util';
import type { ServiceSummary } from '../lib/approvals';
import { closest } from '../lib/domain/suggest';
import { apiPath, describeFailure } from './api-client';
import { CliError } from './cli-error';
import { policyCommand, type Call, type Print } from './policy-commands';
import { ApiSession, ssoSettingsOf, stageSettings } from './session';
import { login, revoke } from './sso';
import { table } from './table';
import { say } from './terminal';
import { readTokens, removeTokens, saveTokens } from './token-cache';
import { required, USAGE } from './usage';

const OPTIONS = {
  api: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean', default: false },
  service: { type: 'string' },
  'provider-account': { type: 'string' },
  'service-region': { type: 'string' },
  reason: { type: 'string' },
  'if-match': { type: 'string' },
  account: { type: 'string' },
  'consumer-region': { type: 'string' },
  yes: { type: 'boolean', short: 'y', default: false },
  force: { type: 'boolean', default: false },
  'no-browser': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Options = ReturnType<typeof parseCommandLine>['values'];

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv);
  const [command, ...args] = positionals;
  if (values.help || !command) throw new CliError(USAGE, values.help ? 0 : 2);
  const baseUrl = apiUrl(values.api ?? process.env.VPCE_GATEKEEPER_API ?? 'http://127.0.0.1:3000');
  const print: Print = (body, human) => say(process.stdout, values.json ? JSON.stringify(body, null, 2) : human());

  if (command === 'login') return loginCommand(baseUrl, values, print);
  if (command === 'logout') return logoutCommand(baseUrl, print);

  const session = await ApiSession.open(baseUrl, values.region);
  const call: Call = async (method, path, options) => {
    const response = await session.request(method, path, options);
    if (response.status === 401) throw new CliError(`${describeFailure(response)}\n${session.unauthorizedHint}`);
    if (response.status >= 400) throw new CliError(describeFailure(response));
    return response.body as Record<string, unknown>;
  };

  switch (command) {
    case 'pending': {
      const connections: Record<string, unknown>[] = [];
      let cursor: string | undefined;
      do {
        const page = await call('GET', '/connections', {
          query: { state: 'pendingAcceptance', serviceId: values.service, providerAccountId: values['provider-account'], serviceRegion: values['service-region'], limit: '100', cursor },
        });
        connections.push(...(page.connections as Record<string, unknown>[]));
        cursor = (page.nextCursor as string | null) ?? undefined;
      } while (cursor);
      return print({ connections }, () =>
        connections.length
          ? table(
              connections.map((c) => ({
                SERVICE: c.serviceId,
                'SERVICE IN': whereOf(c),
                ENDPOINT: c.endpointId,
                ACCOUNT: c.ownerAccountId,
                REGION: c.region,
                SINCE: c.createdAt,
                WHY: decisionOf(c).reason,
              })),
            )
          : 'nothing is waiting for an approver',
      );
    }
    case 'services': {
      const body = await call('GET', '/services');
      const services = body.services as ServiceSummary[];
      return print(body, () => table(services.map((s) => ({ SERVICE: s.serviceId, 'SERVICE IN': whereOf(s), ...countsOf(s.connections), POLICY: policyName(s.policy) }))));
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
    default: {
      const guess = closest(command, ['pending', 'services', 'show', 'accept', 'reject', 'revoke', 'policy', 'login', 'logout']);
      throw new CliError(`unknown command '${command}'${guess ? ` (did you mean '${guess}'?)` : ''}\n\n${USAGE}`, 2);
    }
  }
}

/** The command line, or a usage error (exit 2) saying in plain words what is wrong with it. */
function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS_')) throw error;
    const message = (error as Error).message;
    const option = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? '';
    let problem = message;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const guess = closest(option.replace(/^-+/, ''), Object.keys(OPTIONS));
      problem = `unknown option ${option}${guess ? ` (did you mean --${guess}?)` : ''}`;
    } else if (/argument missing/.test(message)) {
      problem = `${option} needs a value`;
    } else if (/does not take an argument/.test(message)) {
      problem = `${option} takes no value`;
    }
    throw new CliError(`${problem}: run \`vpce-gatekeeper --help\` for the commands and their options`, 2);
  }
}

async function loginCommand(baseUrl: string, values: Options, print: Print): Promise<void> {
  const settings = ssoSettingsOf(baseUrl, await stageSettings(baseUrl));
  const tokens = await login(baseUrl, settings, { openBrowser: !values['no-browser'], say: (line) => say(process.stderr, line) });
  const file = await saveTokens(tokens);
  // The API's own word on who this is, with the token just saved.
  const session = await ApiSession.open(baseUrl, values.region);
  const me = await session.request('GET', '/me');
  if (me.status !== 200) {
    await removeTokens(baseUrl);
    throw new CliError(
      `signed in to ${settings.issuer}, but ${baseUrl} refused the token (${describeFailure(me)}), so nothing is kept: ` +
        `the stage's JWT authorizer must accept the CLI's client ${settings.clientId} (cliClientId, added to jwtAudience)`,
    );
  }
  const { principal, role } = me.body as { principal: string; role: string };
  print({ api: tokens.api, principal, role, expiresAt: tokens.expiresAt, refreshable: Boolean(tokens.refreshToken), file }, () =>
    `signed in to ${tokens.api} as ${principal} (${role}); the token is kept in ${file} and ` +
    (tokens.refreshToken ? 'refreshed when it expires' : `expires at ${tokens.expiresAt}`),
  );
}

async function logoutCommand(baseUrl: string, print: Print): Promise<void> {
  const tokens = await readTokens(baseUrl);
  if (!tokens) return print({ api: baseUrl, signedOut: false }, () => `not signed in to ${baseUrl}: nothing to forget`);
  let revoked = false;
  let warning = '';
  try {
    revoked = await revoke(tokens);
  } catch (error) {
    warning = `; the issuer did not revoke the refresh token (${error instanceof Error ? error.message : String(error)})`;
  }
  await removeTokens(baseUrl);
  print({ api: tokens.api, signedOut: true, revoked }, () => `signed out of ${tokens.api}: its tokens are deleted${revoked ? ' and the refresh token revoked' : ''}${warning}`);
}

/** Where a service lives: `account/region` (a fleet's spoke), or nothing when the record does not say. */
function whereOf(c: { providerAccountId?: unknown; serviceRegion?: unknown }): string {
  return typeof c.providerAccountId === 'string' && typeof c.serviceRegion === 'string' ? `${c.providerAccountId}/${c.serviceRegion}` : '';
}

function showConnection(c: Record<string, unknown>): string {
  const decision = decisionOf(c);
  const summary = table([
    { FIELD: 'service', VALUE: c.serviceId },
    { FIELD: 'service in', VALUE: whereOf(c) },
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

function countsOf(counts: Partial<Record<string, number>>): Record<string, number> {
  const states = ['pendingAcceptance', 'pending', 'available', 'rejected', 'deleted'];
  return Object.fromEntries(states.map((state) => [state.toUpperCase(), counts[state] ?? 0]));
}

/** Which policy governs a service, as the SERVICES table shows it. */
function policyName(policy: ServiceSummary['policy']): string {
  if (!policy) return 'none: every request is held';
  return `${policy.policyId} v${policy.version}${policy.valid ? '' : ' (no longer validates: nothing is decided by it)'}`;
}

function apiUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.protocol === 'http:' || url.protocol === 'https:') return text;
  } catch {
    // Said below.
  }
  throw new CliError(`--api must be the API's URL, such as https://abc123.execute-api.eu-west-1.amazonaws.com, not '${text}'`, 2);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof CliError) {
    if (error.exitCode === 0) say(process.stdout, error.message);
    else say(process.stderr, `vpce-gatekeeper: ${error.message}`);
    process.exit(error.exitCode);
  }
  say(process.stderr, `vpce-gatekeeper: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
