import { randomBytes, randomUUID } from 'node:crypto';
import type { Context, SNSEventRecord } from 'aws-lambda';
import type { Faults } from './faults';
import { DEFAULT_FUNCTION_TIMEOUT_MS, lambdaContext, withinTimeout } from './lambda-runtime';
import { describeError, logLocal } from './log';
import type { LocalQueue } from './sqs';

const REGION = 'us-east-1';
const ACCOUNT_ID = '000000000000';
/** Lambda's asynchronous invocation: the first attempt and two retries. */
const MAX_ATTEMPTS = 3;

/**
 * An SNS event as Lambda delivers it. Lambda sends `"Subject": null` when the
 * publisher gave none, which the aws-lambda typings do not allow for.
 */
export interface LambdaSnsEvent {
  Records: Array<Omit<SNSEventRecord, 'Sns'> & { Sns: Omit<SNSEventRecord['Sns'], 'Subject'> & { Subject: string | null } }>;
}

/** The shape of a Lambda handler that the local stack can invoke. */
export type LambdaHandler = (event: LambdaSnsEvent, context: Context) => Promise<unknown>;

/** A notification whose every delivery attempt failed. */
export interface DeadLetter {
  event: LambdaSnsEvent;
  error: { errorType: string; errorMessage: string };
  attempts: number;
  failedAt: string;
}

/** A message as it was published to the inbound topic. */
export interface InboundMessage {
  messageId: string;
  message: string;
  publishedAt: string;
  /** Lost before delivery (the dropNotifications fault). */
  dropped?: true;
}

/** What Lambda sends to an on-failure destination when an asynchronous invocation failed every attempt. */
interface OnFailureRecord {
  version: '1.0';
  timestamp: string;
  requestContext: { requestId: string; functionArn: string; condition: 'RetriesExhausted'; approximateInvokeCount: number };
  requestPayload: LambdaSnsEvent;
  responseContext: { statusCode: 200; executedVersion: '$LATEST'; functionError: 'Unhandled' };
  responsePayload: { errorType: string; errorMessage: string };
}

export interface InboundSnsOptions {
  topicArn: string;
  functionName: string;
  handler: LambdaHandler;
  faults: Faults;
  /** Delay before the first retry; it doubles before the next. */
  retryDelayMs: number;
  /** After which an invocation has failed. Default: the deployed 30 s. */
  functionTimeoutMs?: number;
  /** The on-failure destination: what failed every attempt goes there, as Lambda sends it. */
  deadLetterQueue: LocalQueue;
}

/**
 * The notification topic and its Lambda subscription: each message becomes an SNS
 * event, invoked asynchronously, retried twice on failure, then dead-lettered.
 */
/** One handler invocation, as the Lambda runtime would report its duration. */
export interface InvocationTiming {
  messageId: string;
  durationMs: number;
  ok: boolean;
}

export class InboundSns {
  private readonly subscriptionArn: string;
  private timers = new Set<NodeJS.Timeout>();
  private inFlight = new Set<Promise<void>>();
  private durations: InvocationTiming[] = [];
  private published: InboundMessage[] = [];
  // Bumped on reset, so that deliveries and retries scheduled before it do nothing.
  private generation = 0;

  constructor(private readonly options: InboundSnsOptions) {
    this.subscriptionArn = `${options.topicArn}:${randomUUID()}`;
  }

  /** Publishes a message to the topic; returns its MessageId. */
  publish(message: string): string {
    const event = this.eventFor(message);
    const { MessageId: messageId = '', Timestamp: publishedAt = '' } = event.Records[0]?.Sns ?? {};
    if (this.options.faults.dropNotification()) {
      this.published.push({ messageId, message, publishedAt, dropped: true });
      logLocal('info', 'notification dropped before delivery (dropNotifications)', { messageId });
      return messageId;
    }
    this.published.push({ messageId, message, publishedAt });
    const copies = this.options.faults.deliveriesPerNotification();
    for (let copy = 0; copy < copies; copy += 1) {
      const awsRequestId = randomUUID();
      this.schedule(this.options.faults.deliveryDelayMs(), () => this.invoke(event, awsRequestId, 1));
    }
    return messageId;
  }

  /** Every message published to the topic since the last reset, in order. */
  messages(): InboundMessage[] {
    return this.published.map((message) => ({ ...message }));
  }

  /** Deliveries and retries waiting for their time, and handler invocations running now. */
  activity(): { scheduled: number; running: number } {
    return { scheduled: this.timers.size, running: this.inFlight.size };
  }

  /** How long each handler invocation took since the last reset, in the order they ended. */
  invocations(): InvocationTiming[] {
    return [...this.durations];
  }

  /** The notifications that failed every attempt and are still in the dead-letter queue, oldest first. */
  deadLetters(): DeadLetter[] {
    return this.options.deadLetterQueue.messages().map(({ body }) => {
      const record = JSON.parse(body) as OnFailureRecord;
      return {
        event: record.requestPayload,
        error: record.responsePayload,
        attempts: record.requestContext.approximateInvokeCount,
        failedAt: record.timestamp,
      };
    });
  }

  /**
   * Cancels every scheduled delivery and retry, waits (at most `timeoutMs`) for
   * invocations already running, and forgets the messages and dead letters.
   */
  async reset(timeoutMs: number): Promise<void> {
    this.generation += 1;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await settleWithin([...this.inFlight], timeoutMs);
    this.options.deadLetterQueue.clear();
    this.published = [];
    this.durations = [];
  }

  private schedule(delayMs: number, run: () => void): void {
    const generation = this.generation;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (generation === this.generation) run();
    }, delayMs);
    this.timers.add(timer);
  }

  private invoke(event: LambdaSnsEvent, awsRequestId: string, attempt: number): void {
    const generation = this.generation;
    const invocation = this.runHandler(event, awsRequestId).then(
      () => undefined,
      (error: unknown) => {
        if (generation === this.generation) this.failed(event, awsRequestId, attempt, error);
      },
    );
    this.inFlight.add(invocation);
    void invocation.finally(() => this.inFlight.delete(invocation));
  }

  private async runHandler(event: LambdaSnsEvent, awsRequestId: string): Promise<void> {
    const timeoutMs = this.options.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS;
    const context = lambdaContext(this.options.functionName, awsRequestId, timeoutMs);
    const started = performance.now();
    let ok = false;
    try {
      // Each attempt gets its own copy, as each Lambda invocation deserializes its own event.
      await withinTimeout(this.options.handler(structuredClone(event), context), timeoutMs);
      ok = true;
    } finally {
      this.durations.push({ messageId: event.Records[0]?.Sns.MessageId ?? '', durationMs: performance.now() - started, ok });
    }
  }

  private failed(event: LambdaSnsEvent, awsRequestId: string, attempt: number, error: unknown): void {
    const messageId = event.Records[0]?.Sns.MessageId;
    const problem = describeError(error);
    logLocal('warn', 'handler invocation failed', { messageId, awsRequestId, attempt, ...problem });
    if (attempt < MAX_ATTEMPTS) {
      const delayMs = this.options.retryDelayMs * 2 ** (attempt - 1);
      this.schedule(delayMs, () => this.invoke(event, awsRequestId, attempt + 1));
      return;
    }
    logLocal('error', 'notification dead-lettered', { messageId, attempts: attempt });
    const record: OnFailureRecord = {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId: awsRequestId,
        functionArn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${this.options.functionName}:$LATEST`,
        condition: 'RetriesExhausted',
        approximateInvokeCount: attempt,
      },
      requestPayload: event,
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: problem,
    };
    this.options.deadLetterQueue.send(JSON.stringify(record));
  }

  private eventFor(message: string): LambdaSnsEvent {
    const { topicArn } = this.options;
    return {
      Records: [
        {
          EventSource: 'aws:sns',
          EventVersion: '1.0',
          EventSubscriptionArn: this.subscriptionArn,
          Sns: {
            Type: 'Notification',
            MessageId: randomUUID(),
            TopicArn: topicArn,
            Subject: null,
            Message: message,
            Timestamp: new Date().toISOString(),
            SignatureVersion: '1',
            Signature: randomBytes(256).toString('base64'),
            SigningCertUrl: `https://sns.${REGION}.amazonaws.com/SimpleNotificationService-local.pem`,
            UnsubscribeUrl: `https://sns.${REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${this.subscriptionArn}`,
            MessageAttributes: {},
          },
        },
      ],
    };
  }
}

async function settleWithin(promises: readonly Promise<unknown>[], timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([Promise.allSettled(promises), timeout]);
  clearTimeout(timer);
}
