import { parseArgs } from 'node:util';
import { startLocalStack } from './stack';

/**
 * `npm start [-- --policy FILE]`: runs the local stack until SIGINT or SIGTERM.
 * PORT (default 3000, 0 for an ephemeral port), ACCEPT_DELAY_MS,
 * LOCAL_RETRY_DELAY_MS, RECONCILE_INTERVAL_SECONDS (default 60, 0: off) and
 * LOCAL_FUNCTION_TIMEOUT_MS (default: each function's deployed timeout) tune it.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { policy: { type: 'string' }, auth: { type: 'string', default: 'iam' } }, strict: true });
  if (values.auth !== 'iam' && values.auth !== 'jwt') throw new Error(`--auth must be iam (SigV4, the default) or jwt (the local OpenID Connect issuer), not '${values.auth}'`);
  const stack = await startLocalStack({
    port: numberFromEnv('PORT', 3000),
    policyFile: values.policy,
    auth: values.auth,
    acceptDelayMs: numberFromEnv('ACCEPT_DELAY_MS', 1000),
    retryDelayMs: numberFromEnv('LOCAL_RETRY_DELAY_MS', 500),
    reconcileIntervalSeconds: numberFromEnv('RECONCILE_INTERVAL_SECONDS', 60),
    functionTimeoutMs: optionalNumberFromEnv('LOCAL_FUNCTION_TIMEOUT_MS'),
  });
  process.stdout.write(`vpce-gatekeeper local stack ready at ${stack.baseUrl}\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
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
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
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
  process.stderr.write(`vpce-gatekeeper local stack failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
