import type { Worker } from 'node:worker_threads';
import type { Context, SQSEvent } from 'aws-lambda';
import type { SqsLambdaHandler } from './event-source-mapping';
import type { WorkerAnswer, WorkerInvocation } from './function-worker';
import { tsWorker } from '../ts-worker';

/**
 * The notification function's invocations in worker threads, one execution
 * environment each, as Lambda's sandboxes are: each imports the handler with its
 * own modules, clients and caches, and runs one invocation at a time on a core of
 * its own where the machine has one. An invocation waits for a free environment
 * when all are busy. The stack runs its functions on its own thread otherwise;
 * this is for measuring what that one thread costs a burst (LOCAL_FUNCTION_WORKERS).
 */
export interface FunctionWorkers {
  handler: SqsLambdaHandler;
  close(): Promise<void>;
}

export async function notificationFunctionInWorkers(count: number): Promise<FunctionWorkers> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`LOCAL_FUNCTION_WORKERS must be a whole number of 1 or more, not ${count}`);
  const workers = await Promise.all(
    Array.from({ length: count }, async () => {
      // The worker's environment is this process's as it stands now: the stack has set it.
      const worker = tsWorker(new URL('./function-worker.ts', import.meta.url));
      await answerOf(worker);
      return worker;
    }),
  );
  const idle = [...workers];
  const waiting: ((worker: Worker) => void)[] = [];
  const release = (worker: Worker) => {
    const next = waiting.shift();
    if (next) next(worker);
    else idle.push(worker);
  };
  return {
    handler: async (event: SQSEvent, context: Context) => {
      const worker = idle.pop() ?? (await new Promise<Worker>((take) => waiting.push(take)));
      try {
        const invocation: WorkerInvocation = {
          event,
          functionName: context.functionName,
          awsRequestId: context.awsRequestId,
          timeoutMs: context.getRemainingTimeInMillis(),
        };
        // One invocation at a time: the worker's next message answers this one.
        const answer = answerOf<WorkerAnswer>(worker);
        worker.postMessage(invocation);
        const settled = await answer;
        if ('error' in settled) throw Object.assign(new Error(settled.error.message), { name: settled.error.name });
        return settled.response;
      } finally {
        release(worker);
      }
    },
    close: async () => {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}

/** The worker's next message, or what it died of. */
function answerOf<T>(worker: Worker): Promise<T> {
  return new Promise((answered, died) => {
    const onError = (error: Error) => {
      worker.off('message', onMessage);
      died(error);
    };
    const onMessage = (message: T) => {
      worker.off('error', onError);
      answered(message);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}
