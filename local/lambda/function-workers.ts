import { Worker } from 'node:worker_threads';
import type { Context, SQSEvent } from 'aws-lambda';
import type { SqsLambdaHandler } from './event-source-mapping';
import type { WorkerAnswer, WorkerInvocation } from './function-worker';

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
      const worker = new Worker(new URL('./function-worker.mjs', import.meta.url));
      await new Promise<void>((ready, failed) => {
        worker.once('message', () => ready());
        worker.once('error', failed);
      });
      return worker;
    }),
  );
  const idle = [...workers];
  const waiting: ((worker: Worker) => void)[] = [];
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let lastId = 0;
  for (const worker of workers) {
    worker.on('message', (answer: WorkerAnswer) => {
      const call = pending.get(answer.id);
      if (!call) return;
      pending.delete(answer.id);
      const next = waiting.shift();
      if (next) next(worker);
      else idle.push(worker);
      if ('error' in answer) call.reject(Object.assign(new Error(answer.error.message), { name: answer.error.name }));
      else call.resolve(answer.response);
    });
  }
  const free = (): Promise<Worker> => {
    const worker = idle.pop();
    return worker ? Promise.resolve(worker) : new Promise((take) => waiting.push(take));
  };
  return {
    handler: async (event: SQSEvent, context: Context) => {
      const worker = await free();
      const id = ++lastId;
      const invocation: WorkerInvocation = {
        id,
        event,
        functionName: context.functionName,
        awsRequestId: context.awsRequestId,
        timeoutMs: context.getRemainingTimeInMillis(),
      };
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage(invocation);
      });
    },
    close: async () => {
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}
