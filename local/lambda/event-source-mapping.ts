import { randomUUID } from 'node:crypto';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { DEFAULT_FUNCTION_TIMEOUT_MS, inInvocation, lambdaContext, withinTimeout } from './lambda-runtime';
import { describeError, logLocal } from '../log';
import type { LocalQueue, ReceivedMessage } from '../aws/sqs';

const REGION = 'us-east-1';
/** How often the pollers look at the queue when nothing told them a message arrived. */
const POLL_INTERVAL_MS = 20;
/** Lambda's limit on a synchronous invocation's payload: a batch stops growing before it. */
export const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

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
  private readonly sizes = new WeakMap<ReceivedMessage, number>();
  private bufferStartedAt = 0;
  private running = new Set<Promise<void>>();
  private records: InvocationRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private polling = false;
  private pollScheduled = false;
  // Bumped on reset, so that an invocation that started before it changes nothing after it.
  private generation = 0;

  constructor(private readonly options: EventSourceMappingOptions) {
    const problem = invalidMapping(options);
    if (problem) throw new Error(`InvalidParameterValueException: ${problem}`);
  }

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
        const batch = this.buffer.slice(0, batchSize);
        const fits = batchThatFits(batch.map((message) => this.recordBytes(message)));
        if (fits === batch.length && batch.length < batchSize && !windowOver) return;
        this.buffer.splice(0, fits);
        batch.length = fits;
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
      const response = await withinTimeout(inInvocation(requestId, () => this.options.handler(structuredClone(this.eventFor(batch)), context)), timeoutMs);
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
    return { Records: batch.map((message) => this.eventRecord(message)) };
  }

  /** A message's size in the invocation's payload, worked out once per receive. */
  private recordBytes(message: ReceivedMessage): number {
    let bytes = this.sizes.get(message);
    if (bytes === undefined) {
      bytes = Buffer.byteLength(JSON.stringify(this.eventRecord(message)));
      this.sizes.set(message, bytes);
    }
    return bytes;
  }

  private eventRecord(message: ReceivedMessage): SQSRecord {
    return sqsRecord(message, this.options.queue.arn);
  }
}

/** A received message as Lambda hands it to the function, one record of its event. */
export function sqsRecord(message: ReceivedMessage, queueArn: string): SQSRecord {
  return {
    messageId: message.messageId,
    receiptHandle: message.receiptHandle,
    body: message.body,
    attributes: message.attributes as unknown as SQSRecord['attributes'],
    messageAttributes: {},
    md5OfBody: message.md5OfBody,
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: REGION,
  };
}

/**
 * What CreateEventSourceMapping refuses for a standard queue: a batch size
 * outside 1..10,000, more than 10 without a batching window of at least a
 * second, a window over 300 s, a maximum concurrency outside 2..1,000.
 */
export function invalidMapping(options: Pick<EventSourceMappingOptions, 'batchSize' | 'maximumBatchingWindowMs' | 'maximumConcurrency'>): string | undefined {
  const { batchSize, maximumBatchingWindowMs: windowMs, maximumConcurrency } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) return `BatchSize ${batchSize} is not between 1 and 10000`;
  if (windowMs < 0 || windowMs > 300_000 || windowMs % 1000 !== 0) return `MaximumBatchingWindowInSeconds ${windowMs / 1000} is not a whole number of seconds from 0 to 300`;
  if (batchSize > 10 && windowMs < 1000) return `BatchSize ${batchSize} is more than 10, which needs MaximumBatchingWindowInSeconds of at least 1`;
  if (!Number.isInteger(maximumConcurrency) || maximumConcurrency < 2 || maximumConcurrency > 1000) {
    return `ScalingConfig MaximumConcurrency ${maximumConcurrency} is not between 2 and 1000`;
  }
  return undefined;
}

/** How many of these records, in order, one invocation's payload holds (at least one: a bigger message fails on its own). */
function batchThatFits(sizes: readonly number[]): number {
  // {"Records":[...]} and the commas between records.
  let total = '{"Records":[]}'.length;
  for (const [index, size] of sizes.entries()) {
    total += size + (index ? 1 : 0);
    if (total > MAX_PAYLOAD_BYTES) return Math.max(index, 1);
  }
  return sizes.length;
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
