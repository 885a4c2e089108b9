import { parseArgs } from 'node:util';
import { parseSpokeList } from './aws/locations';
import { type LogFormat, setLogFormat } from './log';
import { type LocalStack, startLocalStack } from './stack';

const USAGE = `usage: npm start [-- --policy FILE] [--auth iam|jwt] [--spokes ACCOUNT:REGION,...]

Runs the whole stack on 127.0.0.1 in this one process, state in memory, until Ctrl-C (SIGINT) or SIGTERM.

options:
  --policy FILE   a policy file (YAML or JSON, keyed by endpoint service id or 'default'),
                  loaded at start and again on every POST /local/reset.
                  Without it there is no policy, and every request is held for an approver.
                  Try: npm start -- --policy examples/policies.yaml
  --auth jwt      the approvals API behind a JWT authorizer instead of SigV4, trusting the local
                  OpenID Connect issuer at /local/oidc (sign in as local-approver or local-viewer);
                  the console (/console) then signs in through it. Default: --auth iam
  --spokes LIST   more accounts and Regions to decide for, as the stage parameter spokes:
                  ACCOUNT:REGION,... (e.g. 222233334444:eu-west-1). The stack's own account
                  000000000000 and us-east-1 always are one. Or the variable SPOKES.
  --help, -h      this text

variables:
  PORT                        port on 127.0.0.1 (default 3000; 0 picks a free one)
  SPOKES                      as --spokes (which wins when both are given)
  ACCEPT_DELAY_MS             how long an accepted connection stays pending (default 1000)
  LOCAL_VISIBILITY_TIMEOUT_MS the notification queue's visibility timeout: how long a failed message
                              waits before it is retried (default: the deployed 180000)
  LOCAL_MAX_RECEIVE_COUNT     receives before a message moves to the dead-letter queue (default 5)
  LOCAL_BATCH_SIZE            the event source mapping's batch size (default: the deployed 1000)
  LOCAL_BATCHING_WINDOW_MS    its batching window (default 1000)
  LOCAL_MAXIMUM_CONCURRENCY   its maximum concurrency (default 5)
  RECONCILE_INTERVAL_SECONDS  how often the reconciler runs (default 60; 0: only POST /local/reconcile)
  LOCAL_FUNCTION_TIMEOUT_MS   when an invocation counts as failed (default: the deployed timeouts)
  LOCAL_FUNCTION_WORKERS      run the notification function in this many worker threads, one execution
                              environment each, as Lambda's sandboxes are (default: none, every function
                              on the stack's own thread)
  LOCAL_SLACK                 on (default): the Slack simulator at /local/slack and the Slack functions
                              (approvals in Slack, docs/slack.md); off: neither, as a stage without Slack
  LOG_FORMAT                  text (default): one short line per log entry, no metric documents;
                              json: the functions' full JSON log lines and CloudWatch metric
                              documents (stdout) and the local stack's own JSON log (stderr)
  POWERTOOLS_LOG_LEVEL        the functions' log level (default INFO; DEBUG, WARN, ERROR, SILENT)

Reference: docs/local-stack.md`;

/** `npm start [-- --policy FILE]`: runs the local stack until SIGINT or SIGTERM. */
async function main(): Promise<void> {
  const values = parseOptions();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.auth !== 'iam' && values.auth !== 'jwt') {
    throw new Error(`--auth must be iam (SigV4, the default) or jwt (the local OpenID Connect issuer), not '${values.auth}'`);
  }
  setLogFormat(logFormatFromEnv());
  // Handled from the start: a signal that arrives while the stack starts stops it once it is up.
  let stopRequested: NodeJS.Signals | undefined;
  let stop = (signal: NodeJS.Signals) => {
    stopRequested ??= signal;
  };
  process.on('SIGINT', (signal) => stop(signal));
  process.on('SIGTERM', (signal) => stop(signal));

  const stack = await startLocalStack({
    port: numberFromEnv('PORT', 3000),
    policyFile: values.policy,
    auth: values.auth,
    spokes: parseSpokeList(values.spokes ?? process.env.SPOKES),
    acceptDelayMs: numberFromEnv('ACCEPT_DELAY_MS', 1000),
    visibilityTimeoutMs: optionalNumberFromEnv('LOCAL_VISIBILITY_TIMEOUT_MS'),
    maxReceiveCount: optionalNumberFromEnv('LOCAL_MAX_RECEIVE_COUNT'),
    batchSize: optionalNumberFromEnv('LOCAL_BATCH_SIZE'),
    batchingWindowMs: optionalNumberFromEnv('LOCAL_BATCHING_WINDOW_MS'),
    maximumConcurrency: optionalNumberFromEnv('LOCAL_MAXIMUM_CONCURRENCY'),
    reconcileIntervalSeconds: numberFromEnv('RECONCILE_INTERVAL_SECONDS', 60),
    functionTimeoutMs: optionalNumberFromEnv('LOCAL_FUNCTION_TIMEOUT_MS'),
    functionWorkers: optionalNumberFromEnv('LOCAL_FUNCTION_WORKERS'),
    slack: slackFromEnv(),
  });
  process.stdout.write(readyLines(stack, values.policy));

  let stopping = false;
  stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal} received, stopping the local stack\n`);
    stack.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`the local stack did not stop cleanly: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  if (stopRequested) stop(stopRequested);
}

/** What a user needs next: where the stack, its console and (with --auth jwt) the issuer are, and how to sign in. */
function readyLines(stack: LocalStack, policyFile: string | undefined): string {
  const loaded = stack.policyIds.length
    ? `policies loaded from ${policyFile}: ${stack.policyIds.join(', ')}`
    : 'no policy loaded, so every request will be held for an approver (npm start -- --help)';
  const signIn = stack.issuer
    ? [
        `  console  ${stack.baseUrl}/console (Sign in with SSO: local-approver or local-viewer)`,
        `  API      JWT on: bearer tokens from the local OpenID Connect issuer at ${stack.issuer}`,
      ]
    : [
        `  console  ${stack.baseUrl}/console (sign in with the local approver's keys: LOCALAPPROVER / local-approver-secret)`,
        `  API      SigV4 (region us-east-1, service execute-api): LOCALAPPROVER or LOCALVIEWER; --auth jwt for SSO`,
      ];
  return [`vpce-gatekeeper local stack ready at ${stack.baseUrl}; ${loaded}`, ...signIn, ''].join('\n');
}

function parseOptions(): { policy?: string; auth: string; spokes?: string; help: boolean } {
  try {
    const options = {
      policy: { type: 'string' },
      auth: { type: 'string', default: 'iam' },
      spokes: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    } as const;
    return parseArgs({ options, strict: true }).values;
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)} (npm start -- --help)`, { cause: error });
  }
}

function logFormatFromEnv(): LogFormat {
  const raw = process.env.LOG_FORMAT ?? 'text';
  if (raw !== 'text' && raw !== 'json') throw new Error(`LOG_FORMAT must be text or json, not '${raw}'`);
  return raw;
}

function slackFromEnv(): boolean {
  const raw = process.env.LOCAL_SLACK ?? 'on';
  if (raw !== 'on' && raw !== 'off') throw new Error(`LOCAL_SLACK must be on or off, not '${raw}'`);
  return raw === 'on';
}

function numberFromEnv(name: string, fallback: number): number {
  return optionalNumberFromEnv(name) ?? fallback;
}

function optionalNumberFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number of 0 or more, not '${raw}'`);
  return value;
}

main().catch((error: unknown) => {
  process.stderr.write(`vpce-gatekeeper local stack failed to start: ${whyNotStarted(error)}\n`);
  process.exit(1);
});

function whyNotStarted(error: unknown): string {
  const { code, port } = error as { code?: string; port?: number };
  if (code === 'EADDRINUSE') {
    return (
      `port ${port ?? process.env.PORT} on 127.0.0.1 is in use, perhaps by another local stack. ` +
      `Stop that one, or start this one on another port: PORT=${(port ?? 3000) + 1} npm start (PORT=0 picks a free one)`
    );
  }
  return error instanceof Error ? error.message : String(error);
}
