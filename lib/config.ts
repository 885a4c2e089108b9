import * as v from './validation';
import { parseDuration } from './domain/duration';
import { SERVICE_ID } from './domain/ids';
import { parseSpoke, SPOKE_MESSAGE, type Spoke } from './domain/spokes';

// A comma-separated variable, as a list without blanks.
const commaList = v.pipe(
  v.optional(v.string(), ''),
  v.transform((raw: string) => raw.split(',').map((item) => item.trim()).filter(Boolean)),
);
/** A comma-separated variable each of whose entries must match `pattern`. */
const commaListOf = (pattern: RegExp, message: string) => v.pipe(commaList, v.array(v.pipe(v.string(), v.regex(pattern, message))));
/** A flag variable: 'true' or 'false', false when not set. */
const flag = (name: string) =>
  v.pipe(v.optional(v.picklist(['true', 'false'], `${name} must be true or false`), 'false'), v.transform((raw: 'true' | 'false') => raw === 'true'));
/** A variable that may be set to '' (an empty stage parameter, which counts as not set), or a URL. */
const optionalUrl = (message: string, ...checks: v.GenericValidation<string>[]) =>
  v.optional(v.union([v.literal(''), v.pipe(v.string(), v.url(message), ...checks)], message), '');
/** A Slack user id (U…, or W… on Enterprise Grid) or user group id (S…). */
const SLACK_APPROVER = /^[UWS][A-Z0-9]{2,}$/;
/** An SSM parameter name: a path of letters, digits and .-_ segments, or a plain name. */
const SSM_PARAMETER_NAME = /^(\/[\w.-]+)+$|^[\w.-]+$/;
/** A whole number in a variable, within bounds. */
const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  v.pipe(v.unknown(), v.transform(Number), v.number(), v.integer(), v.minValue(min), v.maxValue(max));
// A variable that may be set to '' (an empty stage parameter), which counts as not set.
const optionalMatching = (pattern: RegExp, message: string) =>
  v.pipe(
    v.optional(v.string()),
    v.transform((raw: string | undefined) => (raw === '' ? undefined : raw)),
    v.check((raw: string | undefined) => raw === undefined || pattern.test(raw), message),
  );

/**
 * The one place that reads process.env. Validated once, at cold start, so a
 * misconfigured function fails on its first invocation with the variable's name.
 */
const envSchema = v.object({
  TABLE_NAME: v.pipe(v.string('TABLE_NAME environment variable is not set'), v.minLength(1, 'TABLE_NAME environment variable is not set')),
  // Required by the functions that publish (see outboundTopicArn); tools that only
  // read or write the table, such as the policy loader, run without it.
  OUTBOUND_TOPIC_ARN: v.optional(v.pipe(v.string(), v.startsWith('arn:', 'OUTBOUND_TOPIC_ARN must be an SNS topic ARN'))),
  // Comma-separated endpoint service ids. Empty means: every endpoint service of
  // the account that requires acceptance (DescribeVpcEndpointServiceConfigurations).
  MANAGED_SERVICE_IDS: commaListOf(SERVICE_ID, 'MANAGED_SERVICE_IDS holds an id that is not vpce-svc-…'),
  // How long one invocation may hold the right to act on a connection before
  // another may take over: longer than the function's timeout, shorter than
  // Lambda's first retry of a failed invocation.
  DECISION_LEASE_SECONDS: v.optional(wholeNumber(1), 45),
  // Total attempts per AWS call, including the first; throttling backs off between them.
  AWS_MAX_ATTEMPTS: v.optional(wholeNumber(1, 20), 8),
  // The reconciler: besides MANAGED_SERVICE_IDS, also manage every endpoint service of the
  // account tagged vpce-gatekeeper:managed=true.
  RECONCILE_TAGGED_SERVICES: flag('RECONCILE_TAGGED_SERVICES'),
  // A stage whose table was written before the connections were sharded (issue 20), until its
  // migration has run: a connection not found at its key is looked for at its old one and moved
  // (scripts/migrate-table.ts moves the rest; the reconciler runs it too).
  LEGACY_CONNECTIONS: flag('LEGACY_CONNECTIONS'),
  // The approvals API: who may accept, reject and change policies. Comma-separated IAM
  // principal ARNs (a role's ARN also matches its assumed-role sessions) and JWT groups.
  // Both empty: nobody may, and every write is refused (fail closed).
  APPROVER_PRINCIPALS: commaListOf(/^arn:aws[a-z-]*:(iam|sts)::\d{12}:\S+$/, 'APPROVER_PRINCIPALS holds an entry that is not an IAM or STS principal ARN'),
  APPROVER_GROUPS: commaList,
  // The JWT claim that lists the caller's groups (when the stage uses the JWT authorizer).
  JWT_GROUPS_CLAIM: v.optional(v.pipe(v.string(), v.minLength(1)), 'groups'),
  // The console (GET /console). Its sign-in: with JWT_ISSUER_URL, OpenID Connect (code + PKCE) against
  // that issuer as CONSOLE_CLIENT_ID; without, temporary AWS credentials signing with SigV4 for AWS_REGION.
  JWT_ISSUER_URL: optionalUrl('JWT_ISSUER_URL must be the OpenID Connect issuer URL'),
  CONSOLE_CLIENT_ID: v.optional(v.string(), ''),
  // The CLI's client id at that issuer (`vpce-gatekeeper login`: code + PKCE on a loopback redirect); empty: the console's.
  CLI_CLIENT_ID: v.optional(v.string(), ''),
  // The redirect URI registered for the CLI when the issuer needs an exact one (Cognito: http://localhost:PORT/callback);
  // empty: http://127.0.0.1:<any free port>/callback (RFC 8252).
  CLI_REDIRECT_URI: optionalUrl(
    'CLI_REDIRECT_URI must be a loopback http URL such as http://localhost:8400/callback',
    v.check((raw) => isLoopbackHttp(raw), 'CLI_REDIRECT_URI must be a loopback http URL such as http://localhost:8400/callback'),
  ),
  // Where the browser fetches tokens when that is not the issuer's origin (Cognito: the user pool domain).
  CONSOLE_AUTH_ORIGIN: optionalUrl('CONSOLE_AUTH_ORIGIN must be an origin such as https://example.auth.us-east-1.amazoncognito.com'),
  // The functions' log level (lib/logger.ts), in any case; the variable Powertools Logger read.
  POWERTOOLS_LOG_LEVEL: v.pipe(
    v.optional(v.string(), 'INFO'),
    v.transform((raw: string) => raw.toUpperCase()),
    v.picklist(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'], 'POWERTOOLS_LOG_LEVEL must be DEBUG, INFO, WARN, ERROR or SILENT'),
  ),
  // Set by Lambda: provisioned-concurrency when the environment was started ahead of any request.
  AWS_LAMBDA_INITIALIZATION_TYPE: v.optional(v.string()),
  // The CloudWatch namespace of the functions' metrics (lib/metrics.ts), one per stage; the variable
  // Powertools Metrics read, kept for deployed stages. Without it, Powertools' default namespace.
  POWERTOOLS_METRICS_NAMESPACE: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(255)), 'default_namespace'),
  // Set by Lambda (and by the local stack): the region the API is signed for.
  AWS_REGION: v.optional(v.string(), 'us-east-1'),
  // Policies by OU and organization: the read-only role in the management (or delegated
  // administrator) account to assume. Not set: Organizations is called with the function's own role.
  ORGANIZATIONS_ROLE_ARN: optionalMatching(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, 'ORGANIZATIONS_ROLE_ARN must be an IAM role ARN'),
  ORGANIZATIONS_EXTERNAL_ID: optionalMatching(
    /^[\w+=,.@:/-]{2,1224}$/,
    'ORGANIZATIONS_EXTERNAL_ID must be 2-1224 characters of letters, digits and +=,.@:/-',
  ),
  // A fleet's other spokes (the stage parameter spokes), comma-separated account:region, and the
  // name stack/spoke.yml gives its topic in each.
  SPOKES: v.pipe(
    commaList,
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const spokes: Spoke[] = [];
      for (const entry of dataset.value) {
        const spoke = parseSpoke(entry);
        if (spoke) spokes.push(spoke);
        else addIssue({ message: `'${entry}' ${SPOKE_MESSAGE}`, input: entry });
      }
      return spokes.length === dataset.value.length ? spokes : NEVER;
    }),
  ),
  SPOKE_TOPIC_NAME: v.optional(v.string(), ''),
  // The stage's own inbound topic: the reconciler wires the notifications of its own account's managed services to it.
  INBOUND_TOPIC_ARN: v.optional(v.pipe(v.string(), v.startsWith('arn:', 'INBOUND_TOPIC_ARN must be an SNS topic ARN'))),
  // The role stack/spoke.yml creates in each spoke account (one name in all), and the external id its trust asks for.
  SPOKE_ROLE_NAME: v.optional(v.string(), ''),
  SPOKE_EXTERNAL_ID: optionalMatching(/^[\w+=,.@:/-]{2,256}$/, 'SPOKE_EXTERNAL_ID must be 2-256 characters of letters, digits and +=,.@:/-'),
  // The account the stage runs in: the hub's own spoke, named on the records of its services.
  HUB_ACCOUNT_ID: optionalMatching(/^\d{12}$/, 'HUB_ACCOUNT_ID must be a 12-digit AWS account id'),
  // Slack approvals (docs/slack.md). The channel approval requests are posted to, and who may
  // decide from Slack: user ids (U…, W…) and user group ids (S…). Empty approvers: nobody.
  SLACK_CHANNEL: optionalMatching(/^[CGD][A-Z0-9]{2,}$/, 'SLACK_CHANNEL must be a Slack channel id such as C0123456789'),
  SLACK_APPROVERS: commaListOf(SLACK_APPROVER, 'SLACK_APPROVERS holds an entry that is not a Slack user id (U…, W…) or user group id (S…)'),
  // The names of the SSM SecureString parameters holding the bot token and the signing secret:
  // the secrets themselves are read from Parameter Store at cold start, never from the environment.
  SLACK_BOT_TOKEN_PARAMETER: optionalMatching(SSM_PARAMETER_NAME, 'SLACK_BOT_TOKEN_PARAMETER must be an SSM parameter name such as /vpce-gatekeeper/prod/slack-bot-token'),
  SLACK_SIGNING_SECRET_PARAMETER: optionalMatching(
    SSM_PARAMETER_NAME,
    'SLACK_SIGNING_SECRET_PARAMETER must be an SSM parameter name such as /vpce-gatekeeper/prod/slack-signing-secret',
  ),
  // Where Slack's Web API is: its methods are <SLACK_API_URL><method>.
  SLACK_API_URL: v.optional(
    v.pipe(v.string(), v.url('SLACK_API_URL must be a URL such as https://slack.com/api/'), v.endsWith('/', 'SLACK_API_URL must end with /')),
    'https://slack.com/api/',
  ),
  // How long an account's membership read from Organizations is used (ISO 8601 duration).
  ORGANIZATION_CACHE_TTL: v.pipe(
    v.optional(v.string(), 'PT15M'),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const parsed = parseDuration(dataset.value);
      if ('ms' in parsed && parsed.ms > 0) return parsed.ms / 1000;
      addIssue({ message: `ORGANIZATION_CACHE_TTL must be an ISO 8601 duration such as PT15M, not '${dataset.value}'` });
      return NEVER;
    }),
  ),
});

/** An http URL on this machine's loopback (RFC 8252 §7.3), as the CLI's redirect must be. */
function isLoopbackHttp(raw: string): boolean {
  try {
    const url = new URL(raw);
    return url.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  } catch {
    return false;
  }
}

export type Config = v.InferOutput<typeof envSchema>;

/** Parses the environment; throws naming every variable that is missing or wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = v.safeParse(envSchema, env);
  if (!parsed.success) {
    const problems = parsed.issues.map((issue) => `${v.pathOf(issue)}: ${issue.message}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.output;
}

let cached: Config | undefined;

/** The configuration of this process, read on first use and kept. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}

/**
 * The X-Ray trace id of the invocation running now: Lambda sets _X_AMZN_TRACE_ID for each
 * invocation (`Root=1-…;Parent=…;Sampled=…`), so it is read when asked, never kept.
 */
export function xrayTraceId(): string | undefined {
  return /(?:^|;)Root=([^;]+)/.exec(process.env._X_AMZN_TRACE_ID ?? '')?.[1];
}

/** The outbound topic; throws naming the variable when this process has none. */
export function outboundTopicArn(): string {
  const arn = config().OUTBOUND_TOPIC_ARN;
  if (!arn) throw new Error('invalid configuration: OUTBOUND_TOPIC_ARN environment variable is not set');
  return arn;
}


/** Slack's settings, for the Slack functions; throws naming every variable that is missing. */
export function slackSettings(): { channel: string; approvers: string[]; botTokenParameter: string; signingSecretParameter: string; apiUrl: string } {
  const { SLACK_CHANNEL, SLACK_APPROVERS, SLACK_BOT_TOKEN_PARAMETER, SLACK_SIGNING_SECRET_PARAMETER, SLACK_API_URL } = config();
  const missing = Object.entries({ SLACK_CHANNEL, SLACK_BOT_TOKEN_PARAMETER, SLACK_SIGNING_SECRET_PARAMETER })
    .filter(([, value]) => !value)
    .map(([name]) => `${name} environment variable is not set`);
  if (missing.length || !SLACK_CHANNEL || !SLACK_BOT_TOKEN_PARAMETER || !SLACK_SIGNING_SECRET_PARAMETER) throw new Error(`invalid configuration: ${missing.join('; ')}`);
  return {
    channel: SLACK_CHANNEL,
    approvers: SLACK_APPROVERS,
    botTokenParameter: SLACK_BOT_TOKEN_PARAMETER,
    signingSecretParameter: SLACK_SIGNING_SECRET_PARAMETER,
    apiUrl: SLACK_API_URL,
  };
}
