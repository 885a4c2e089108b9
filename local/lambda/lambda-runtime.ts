import { randomBytes } from 'node:crypto';
import { InvokeStore, InvokeStoreBase } from '@aws/lambda-invoke-store';
import type { Context } from 'aws-lambda';

const REGION = 'us-east-1';
const ACCOUNT_ID = '000000000000';
/** The deployed notification and API functions' timeout (serverless.yml). */
export const DEFAULT_FUNCTION_TIMEOUT_MS = 30_000;

/**
 * Races an invocation against its function's timeout, as the Lambda runtime
 * does: past the timeout the invocation has failed, whatever it is still doing.
 *
 * In Lambda the sandbox is then frozen or recycled, so the timed-out code never
 * runs again. In one process there is no freezing a promise; the local stack
 * gets the same effect where it matters, in crashAfterEc2Call: the simulator
 * keeps the killed invocation's EC2 request unanswered for as long as the stack
 * runs, so the code after that call never runs and the SDK has nothing to retry.
 */
export async function withinTimeout<T>(invocation: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`)), timeoutMs);
  });
  try {
    return await Promise.race([invocation, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What Lambda's runtime sets when invocations share an execution environment: the local stack
 * runs every function in one process, concurrently, so it is such an environment.
 */
export const LAMBDA_CONCURRENCY_ENV = { AWS_LAMBDA_MAX_CONCURRENCY: '64' } as const;

/**
 * Runs one invocation as Lambda's runtime does where invocations share an
 * execution environment (AWS_LAMBDA_MAX_CONCURRENCY set): inside the
 * InvokeStore's context for its request id, so that what libraries keep per
 * invocation (Powertools' Lambda context and log keys) stays with it, and a
 * log line of one function is never labelled with another's name.
 */
export async function inInvocation<T>(awsRequestId: string, run: () => Promise<T>): Promise<T> {
  const store = await InvokeStore.getInstanceAsync();
  return store.run({ [InvokeStoreBase.PROTECTED_KEYS.REQUEST_ID]: awsRequestId }, run);
}

/** A Lambda context for one invocation. */
export function lambdaContext(functionName: string, awsRequestId: string, timeoutMs = DEFAULT_FUNCTION_TIMEOUT_MS): Context {
  const deadline = Date.now() + timeoutMs;
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    // The callback-style completions are deprecated and unused by async handlers.
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
