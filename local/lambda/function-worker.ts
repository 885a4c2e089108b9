import { parentPort } from 'node:worker_threads';
import type { SQSEvent } from 'aws-lambda';
import { inInvocation, lambdaContext } from './lambda-runtime';

// One execution environment of the notification function in a thread of its own
// (local/lambda/function-workers.ts, started through local/worker-entry.mjs): its own modules, clients and caches, as a
// Lambda sandbox has. It imports the handler as Lambda does at cold start, with
// the environment the stack set, then runs one invocation at a time.

/** What the stack asks a worker: one invocation. */
export interface WorkerInvocation {
  event: SQSEvent;
  functionName: string;
  awsRequestId: string;
  timeoutMs: number;
}

/** What a worker answers: the handler's response, or what it threw. */
export type WorkerAnswer = { response: unknown } | { error: { name: string; message: string } };

const { handler } = await import('../../handlers/on-connection-notification');
parentPort?.on('message', (invocation: WorkerInvocation) => {
  const context = lambdaContext(invocation.functionName, invocation.awsRequestId, invocation.timeoutMs);
  inInvocation(invocation.awsRequestId, () => handler(invocation.event, context)).then(
    (response) => parentPort?.postMessage({ response } satisfies WorkerAnswer),
    (error: unknown) => {
      const { name, message } = error instanceof Error ? error : new Error(String(error));
      parentPort?.postMessage({ error: { name, message } } satisfies WorkerAnswer);
    },
  );
});
parentPort?.postMessage({ ready: true });
