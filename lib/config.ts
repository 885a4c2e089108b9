import { z } from 'zod';

/**
 * The one place that reads process.env. Validated once, at cold start, so a
 * misconfigured function fails on its first invocation with the variable's name.
 */
const envSchema = z.object({
  TABLE_NAME: z.string().min(1, 'TABLE_NAME environment variable is not set'),
  // Required by the functions that publish (see outboundTopicArn); tools that only
  // read or write the table, such as the policy loader, run without it.
  OUTBOUND_TOPIC_ARN: z.string().startsWith('arn:', 'OUTBOUND_TOPIC_ARN must be an SNS topic ARN').optional(),
  // Comma-separated endpoint service ids. Empty means: every endpoint service of
  // the account that requires acceptance (DescribeVpcEndpointServiceConfigurations).
  MANAGED_SERVICE_IDS: z
    .string()
    .default('')
    .transform((raw) => raw.split(',').map((id) => id.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^vpce-svc-[0-9a-f]{8,17}$/, 'MANAGED_SERVICE_IDS holds an id that is not vpce-svc-…'))),
  // How long one invocation may hold the right to act on a connection before
  // another may take over: longer than the function's timeout, shorter than
  // Lambda's first retry of a failed invocation.
  DECISION_LEASE_SECONDS: z.coerce.number().int().positive().default(45),
  // Total attempts per AWS call, including the first; throttling backs off between them.
  AWS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(8),
});

export type Config = z.infer<typeof envSchema>;

/** Parses the environment; throws naming every variable that is missing or wrong. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}

let cached: Config | undefined;

/** The configuration of this process, read on first use and kept. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}

/** The outbound topic; throws naming the variable when this process has none. */
export function outboundTopicArn(): string {
  const arn = config().OUTBOUND_TOPIC_ARN;
  if (!arn) throw new Error('invalid configuration: OUTBOUND_TOPIC_ARN environment variable is not set');
  return arn;
}
