import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { inInvocation, lambdaContext, withinTimeout } from './lambda-runtime';
import { describeError, logLocal } from '../log';

const REGION = 'us-east-1';
const ACCOUNT_ID = '000000000000';

/** A handler the local stack invokes directly: on a schedule, or when asked to. */
export type DirectHandler = (event: unknown, context: Context) => Promise<unknown>;

export interface ScheduledFunctionOptions {
  functionName: string;
  handler: DirectHandler;
  timeoutMs: number;
  /** Seconds between scheduled runs; 0: only when asked to. */
  intervalSeconds: number;
}

/**
 * A function invoked directly: behind an EventBridge schedule, as the reconciler
 * is deployed (a Scheduled Event every interval; a tick that finds the previous
 * run still going is skipped), and on demand, as an operator invokes the redrive.
 */
export class ScheduledFunction {
  private timer: NodeJS.Timeout | undefined;
  private running = new Set<Promise<unknown>>();
  private counts = { completed: 0, failed: 0 };

  constructor(private readonly options: ScheduledFunctionOptions) {}

  start(): void {
    if (this.options.intervalSeconds <= 0 || this.timer) return;
    this.timer = setInterval(() => {
      if (this.running.size) return;
      this.run().catch(() => undefined); // run() has logged it
    }, this.options.intervalSeconds * 1000);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Invokes the function now, with `event` or the schedule's; resolves with what
   * it returned, rejects with why it failed.
   */
  async run(event: unknown = scheduledEvent(this.options.functionName)): Promise<unknown> {
    const { functionName, handler, timeoutMs } = this.options;
    const awsRequestId = randomUUID();
    const invocation = withinTimeout(inInvocation(awsRequestId, () => handler(structuredClone(event), lambdaContext(functionName, awsRequestId, timeoutMs))), timeoutMs);
    this.running.add(invocation);
    try {
      const result = await invocation;
      this.counts.completed += 1;
      return result;
    } catch (error) {
      this.counts.failed += 1;
      logLocal('warn', 'scheduled function invocation failed', { functionName, awsRequestId, ...describeError(error) });
      throw error;
    } finally {
      this.running.delete(invocation);
    }
  }

  /** Runs completed and failed since start, and whether one is going now. */
  activity(): { running: number; completed: number; failed: number } {
    return { running: this.running.size, ...this.counts };
  }

  /** Waits (at most `timeoutMs`) for the runs going now. */
  async settle(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.running]), timeout]);
    clearTimeout(timer);
  }
}

/** The event an EventBridge schedule rule sends. */
function scheduledEvent(functionName: string) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: ACCOUNT_ID,
    time: new Date().toISOString(),
    region: REGION,
    resources: [`arn:aws:events:${REGION}:${ACCOUNT_ID}:rule/${functionName}-schedule`],
    detail: {},
  };
}
