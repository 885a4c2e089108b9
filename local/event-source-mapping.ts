import { randomUUID } from 'node:crypto';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { DEFAULT_FUNCTION_TIMEOUT_MS, lambdaContext, withinTimeout } from './lambda-runtime';
import { describeError, logLocal } from './log';
import type { LocalQueue, ReceivedMessage } from './sqs';

const REGION = 'us-east-1';
/** How often the pollers look at the queue when nothing told them a message arrived. */
const POLL_INTERVAL_MS = 20;

/** The shape of a Lambda handler the event source mapping invokes. */
export type SqsLambdaHandler = (event: SQSEvent, context: Context) => Promise<unknown>;

export interface EventSourceMappingOptions {
  queue: LocalQueue;
  functionName: string;
  handler: SqsLambdaHandler;
  /** BatchSize: the most messages one invocation gets. */
  batchSize: number;
  /** MaximumBatchingWindowInSeconds, in ms: how long to gather a batch before invoking with fewer. */
  maximumBatchingWindowMs: number;
  /** ScalingConfig.MaximumConcurrency: the most invocations at once. */
  maximumConcurrency: number;
  /** After which an invocation has failed. Default: the deployed 30 s. */
  functionTimeoutMs?: number;
}

/** One invocation, as the stack reports it on GET /local/invocations. */
export interface InvocationRecord {
  requestId: string;
  startedAt: string;
  durationMs: number;
  batchSize: number;
  /** Whether the function returned (false: it threw, timed out or answered what Lambda cannot read). */
  ok: boolean;
  /** The messages it reported as batch item failures. */
  failedItems: number;
}

/**
 * Lambda's SQS event source mapping, with FunctionResponseTypes
 * ReportBatchItemFailures: polls the queue, gathers a batch until it is full or
 * the batching window ends, invokes the function with at most
 * maximumConcurrency invocations at once, and deletes what went through. What
 * the function reports failed, or the whole batch when it throws or times out,
 * stays in the queue and comes back once its visibility timeout ends; the queue's
 * redrive policy moves it to the dead-letter queue after maxReceiveCount receives.
 */
export class EventSourceMapping {
  private buffer: ReceivedMessage[] = [];
  private bufferStartedAt = 0;
  private running = new Set<Promise<void>>();
  private records: InvocationRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private polling = false;
  private pollScheduled = false;
  // Bumped on reset, so that an invocation that started before it changes nothing after it.
  private generation = 0;

  constructor(private readonly options: EventSourceMappingOptions) {}

  start(): void {
    if (this.timer) return;
    this.unsubscribe = this.options.queue.onMessage(() => this.pollSoon());
    const tick = () => {
      this.poll();
      this.timer = setTimeout(tick, POLL_INTERVAL_MS);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
  }

  /** Invocations running now, and messages received and waiting for their batch to be invoked. */
  activity(): { running: number; gathering: number } {
    return { running: this.running.size, gathering: this.buffer.length };
  }

  /** Every invocation since the last reset, in the order they ended. */
  invocations(): InvocationRecord[] {
    return [...this.records];
  }

  /** Drops the batch being gathered and the invocation log, and waits (at most `timeoutMs`) for invocations running. */
  async reset(timeoutMs: number): Promise<void> {
    this.generation += 1;
    this.buffer = [];
    await settleWithin([...this.running], timeoutMs);
    this.records = [];
  }

  /** A poll once the current turn is over: a message arrives inside whatever sent it. */
  private pollSoon(): void {
    if (this.pollScheduled || !this.timer) return;
    this.pollScheduled = true;
    setImmediate(() => {
      this.pollScheduled = false;
      this.poll();
    });
  }

  private poll(): void {
    if (this.polling) return;
    this.polling = true;
    try {
      const { batchSize, maximumBatchingWindowMs, maximumConcurrency } = this.options;
      while (this.running.size < maximumConcurrency) {
        if (this.buffer.length < batchSize) {
          const received = this.options.queue.receive(batchSize - this.buffer.length);
          if (received.length && !this.buffer.length) this.bufferStartedAt = Date.now();
          this.buffer.push(...received);
        }
        if (!this.buffer.length) return;
        const windowOver = Date.now() - this.bufferStartedAt >= maximumBatchingWindowMs;
        if (this.buffer.length < batchSize && !windowOver) return;
        const batch = this.buffer.splice(0, batchSize);
        this.bufferStartedAt = Date.now();
        this.invoke(batch);
      }
    } finally {
      this.polling = false;
    }
  }

  private invoke(batch: ReceivedMessage[]): void {
    const generation = this.generation;
    const invocation = this.run(batch).then(
      (failed) => {
        if (generation === this.generation) this.deleteAllBut(batch, failed);
      },
      (error: unknown) => {
        logLocal('warn', 'invocation failed; its whole batch returns to the queue after the visibility timeout', {
          functionName: this.options.functionName,
          messages: batch.length,
          ...describeError(error),
        });
      },
    );
    this.running.add(invocation);
    void invocation.finally(() => {
      this.running.delete(invocation);
      this.pollSoon();
    });
  }

  /** Invokes the function; resolves with the message ids it reported failed, rejects when the whole batch failed. */
  private async run(batch: ReceivedMessage[]): Promise<Set<string>> {
    const timeoutMs = this.options.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS;
    const requestId = randomUUID();
    const context = lambdaContext(this.options.functionName, requestId, timeoutMs);
    const started = performance.now();
    const record: InvocationRecord = { requestId, startedAt: new Date().toISOString(), durationMs: 0, batchSize: batch.length, ok: false, failedItems: 0 };
    try {
      // Each invocation deserializes its own copy of the event.
      const response = await withinTimeout(this.options.handler(structuredClone(this.eventFor(batch)), context), timeoutMs);
      const failed = batchItemFailures(response, batch);
      record.ok = true;
      record.failedItems = failed.size;
      return failed;
    } finally {
      record.durationMs = performance.now() - started;
      this.records.push(record);
    }
  }

  private deleteAllBut(batch: ReceivedMessage[], failed: Set<string>): void {
    for (const message of batch) if (!failed.has(message.messageId)) this.options.queue.delete(message.receiptHandle);
  }

  private eventFor(batch: ReceivedMessage[]): SQSEvent {
    const { queue } = this.options;
    return {
      Records: batch.map(
        (message): SQSRecord => ({
          messageId: message.messageId,
          receiptHandle: message.receiptHandle,
          body: message.body,
          attributes: message.attributes as unknown as SQSRecord['attributes'],
          messageAttributes: {},
          md5OfBody: message.md5OfBody,
          eventSource: 'aws:sqs',
          eventSourceARN: queue.arn,
          awsRegion: REGION,
        }),
      ),
    };
  }
}

/**
 * Reads `{batchItemFailures: [{itemIdentifier}]}` as Lambda does: nothing, null
 * or an empty list means every message went through; an identifier that is
 * empty or names no message of the batch makes the whole batch a failure.
 */
export function batchItemFailures(response: unknown, batch: readonly { messageId: string }[]): Set<string> {
  if (response === undefined || response === null || typeof response !== 'object') return new Set();
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) throw new Error('batchItemFailures is not a list: Lambda treats the whole batch as failed');
  const ids = new Set(batch.map((message) => message.messageId));
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !ids.has(id)) {
      throw new Error(`batch item failure ${JSON.stringify(id)} names no message of the batch: Lambda treats the whole batch as failed`);
    }
    failed.add(id);
  }
  return failed;
}

async function settleWithin(promises: readonly Promise<unknown>[], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([Promise.allSettled(promises), timeout]);
  clearTimeout(timer);
}
