import { randomUUID } from 'node:crypto';
import { inInvocation, lambdaContext, withinTimeout } from './lambda-runtime';
import type { DirectHandler } from './scheduled-function';
import { describeError, logLocal } from '../log';

/** Lambda's retries of a failed asynchronous invocation: two, after about a minute and then two. */
export const ASYNC_RETRY_DELAYS_MS = [60_000, 120_000] as const;

/**
 * How many of its invocations run at once in this one process; the others wait their turn, as
 * events wait in Lambda's queue for a function at its concurrency limit. A burst of decisions
 * then costs the local stack a steady trickle, not a thousand handlers at once.
 */
export const LOCAL_ASYNC_CONCURRENCY = 10;

export interface AsyncFunctionOptions {
  functionName: string;
  handler: DirectHandler;
  timeoutMs: number;
  /** The delays before each retry of a failed invocation. Default: Lambda's. */
  retryDelaysMs?: readonly number[];
  /** Invocations running at once; the rest wait, in order. Default LOCAL_ASYNC_CONCURRENCY. */
  maxConcurrency?: number;
}

/**
 * A function invoked asynchronously, as SNS invokes its Lambda subscribers:
 * the caller does not wait; a failed invocation is retried after Lambda's
 * delays, and after the last retry the event is dropped (deployed, it would go
 * to the function's on-failure destination, if it had one) and logged.
 */
export class AsyncFunction {
  private running = new Set<Promise<unknown>>();
  private waiting: { event: unknown; retry: number }[] = [];
  private retries = new Set<NodeJS.Timeout>();
  private counts = { completed: 0, failed: 0, dropped: 0 };

  constructor(private readonly options: AsyncFunctionOptions) {}

  /** Queues an invocation (InvocationType Event): it runs when its turn comes, and again on failure. */
  invoke(event: unknown): void {
    this.enqueue(event, 0);
  }

  /** Invocations running now, waiting their turn, waiting to be retried; completed, failed (each attempt), dropped after their last retry. */
  activity(): { running: number; waiting: number; retrying: number; completed: number; failed: number; dropped: number } {
    return { running: this.running.size, waiting: this.waiting.length, retrying: this.retries.size, ...this.counts };
  }

  /** Forgets the events waiting and the retries, and waits (at most `timeoutMs`) for the invocations running. */
  async reset(timeoutMs: number): Promise<void> {
    this.waiting = [];
    for (const timer of this.retries) clearTimeout(timer);
    this.retries.clear();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.running]), timeout]);
    clearTimeout(timer);
  }

  private enqueue(event: unknown, retry: number): void {
    this.waiting.push({ event, retry });
    this.startWaiting();
  }

  private startWaiting(): void {
    const limit = this.options.maxConcurrency ?? LOCAL_ASYNC_CONCURRENCY;
    while (this.running.size < limit) {
      const next = this.waiting.shift();
      if (!next) return;
      this.attempt(next.event, next.retry);
    }
  }

  private attempt(event: unknown, retry: number): void {
    const { functionName, handler, timeoutMs, retryDelaysMs = ASYNC_RETRY_DELAYS_MS } = this.options;
    const awsRequestId = randomUUID();
    const invocation = withinTimeout(inInvocation(awsRequestId, () => handler(structuredClone(event), lambdaContext(functionName, awsRequestId, timeoutMs))), timeoutMs);
    this.running.add(invocation);
    invocation.then(
      () => {
        this.counts.completed += 1;
      },
      (error: unknown) => {
        this.counts.failed += 1;
        const delay = retryDelaysMs[retry];
        if (delay === undefined) {
          this.counts.dropped += 1;
          logLocal('error', 'asynchronous invocation failed after its retries; the event is dropped', { functionName, awsRequestId, ...describeError(error) });
          return;
        }
        logLocal('warn', 'asynchronous invocation failed; Lambda retries it', { functionName, awsRequestId, retryInMs: delay, ...describeError(error) });
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.enqueue(event, retry + 1);
        }, delay);
        this.retries.add(timer);
      },
    ).finally(() => {
      this.running.delete(invocation);
      this.startWaiting();
    });
  }
}
