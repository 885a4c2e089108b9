import { createHash, randomUUID } from 'node:crypto';
import { requestId as newRequestId } from './ids';

/** SQS's AWS JSON 1.0 content type. */
const JSON_1_0 = 'application/x-amz-json-1.0';
const REGION = 'us-east-1';
const ACCOUNT_ID = '000000000000';
const MAX_RECEIVE = 10;
/** How fast a message move task goes when not told: SQS's "system optimized" rate is about 500 a second. */
const DEFAULT_MOVE_RATE_PER_SECOND = 500;
const MOVE_TICK_MS = 100;

/** A message as `GET /local/dlq` and the control routes show it. */
export interface QueuedMessage {
  messageId: string;
  body: string;
  sentAt: string;
  /** Times it was received; for a dead letter, the receives before it was moved to the dead-letter queue. */
  receiveCount: number;
  /** For a dead letter: the queue it was moved from. */
  deadLetterSourceArn?: string;
}

/** One message as a receive hands it out. */
export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  md5OfBody: string;
  /** ApproximateReceiveCount, SentTimestamp, ApproximateFirstReceiveTimestamp, SenderId: as SQS spells them. */
  attributes: Record<string, string>;
}

interface Stored {
  messageId: string;
  body: string;
  sentAt: number;
  firstReceivedAt?: number;
  receiveCount: number;
  invisibleUntil: number;
  receiptHandle?: string;
  deadLetterSourceArn?: string;
  receivesBeforeDeadLetter?: number;
}

/** Where a queue sends what it received too often (its RedrivePolicy). */
export interface RedrivePolicy {
  deadLetterQueue: LocalQueue;
  maxReceiveCount: number;
}

export interface QueueSettings {
  name: string;
  /** The base URL queue URLs start with (the stack's SQS endpoint). */
  endpoint: string;
  /** The default visibility timeout, in milliseconds (SQS counts seconds; local tests may go below one). */
  visibilityTimeoutMs: number;
  redrivePolicy?: RedrivePolicy;
}

/**
 * One standard SQS queue: send, receive with a visibility timeout, delete and
 * change visibility by receipt handle, and the move to a dead-letter queue of a
 * message received more than maxReceiveCount times.
 */
export class LocalQueue {
  readonly name: string;
  readonly url: string;
  readonly arn: string;
  /** Insertion-ordered (oldest first), and a removal is O(1): a burst holds tens of thousands. */
  private stored = new Set<Stored>();
  private readonly byReceiptHandle = new Map<string, Stored>();
  private readonly listeners = new Set<() => void>();

  constructor(readonly settings: QueueSettings) {
    this.name = settings.name;
    this.url = `${settings.endpoint}/${ACCOUNT_ID}/${settings.name}`;
    this.arn = `arn:aws:sqs:${REGION}:${ACCOUNT_ID}:${settings.name}`;
  }

  /** Adds a message; returns its MessageId. */
  send(body: string, moved?: { messageId: string; deadLetterSourceArn?: string; receivesBeforeDeadLetter?: number; sentAt: number }): string {
    const messageId = moved?.messageId ?? randomUUID();
    this.stored.add({
      messageId,
      body,
      sentAt: moved?.sentAt ?? Date.now(),
      receiveCount: 0,
      invisibleUntil: 0,
      ...(moved?.deadLetterSourceArn ? { deadLetterSourceArn: moved.deadLetterSourceArn, receivesBeforeDeadLetter: moved.receivesBeforeDeadLetter } : {}),
    });
    for (const listener of this.listeners) listener();
    return messageId;
  }

  /**
   * Up to `max` visible messages, hidden for `visibilityMs` (the queue's default
   * when not given). A message already received maxReceiveCount times is moved to
   * the dead-letter queue instead of being handed out again.
   */
  receive(max: number, visibilityMs = this.settings.visibilityTimeoutMs): ReceivedMessage[] {
    const now = Date.now();
    const taken: ReceivedMessage[] = [];
    const redrive = this.settings.redrivePolicy;
    const deadLettered: Stored[] = [];
    for (const message of this.stored) {
      if (taken.length >= max) break;
      if (message.invisibleUntil > now) continue;
      if (redrive && message.receiveCount >= redrive.maxReceiveCount) {
        deadLettered.push(message);
        continue;
      }
      if (message.receiptHandle) this.byReceiptHandle.delete(message.receiptHandle);
      message.receiptHandle = randomUUID();
      this.byReceiptHandle.set(message.receiptHandle, message);
      message.invisibleUntil = now + visibilityMs;
      message.receiveCount += 1;
      message.firstReceivedAt ??= now;
      taken.push({
        messageId: message.messageId,
        receiptHandle: message.receiptHandle,
        body: message.body,
        md5OfBody: md5(message.body),
        attributes: {
          ApproximateReceiveCount: String(message.receiveCount),
          SentTimestamp: String(message.sentAt),
          SenderId: 'AIDAIT2UOQQY3AUEKVGXU',
          ApproximateFirstReceiveTimestamp: String(message.firstReceivedAt),
        },
      });
    }
    for (const message of deadLettered) {
      this.remove(message);
      redrive?.deadLetterQueue.send(message.body, {
        messageId: message.messageId,
        sentAt: message.sentAt,
        deadLetterSourceArn: this.arn,
        receivesBeforeDeadLetter: message.receiveCount,
      });
    }
    return taken;
  }

  /** Deletes the message last received with this handle; a stale handle is ignored, as SQS does. */
  delete(receiptHandle: string): void {
    const message = this.byReceiptHandle.get(receiptHandle);
    if (message) this.remove(message);
  }

  /** Hides the message last received with this handle for `visibilityMs` from now (0: visible at once). */
  changeVisibility(receiptHandle: string, visibilityMs: number): boolean {
    const message = this.byReceiptHandle.get(receiptHandle);
    if (!message) return false;
    message.invisibleUntil = Date.now() + visibilityMs;
    return true;
  }

  /** ApproximateNumberOfMessages and ApproximateNumberOfMessagesNotVisible, exactly. */
  counts(): { visible: number; inFlight: number } {
    const now = Date.now();
    const inFlight = [...this.stored].filter((message) => message.invisibleUntil > now).length;
    return { visible: this.stored.size - inFlight, inFlight };
  }

  /** When the next hidden message becomes visible again, if any is hidden. */
  nextVisibleAt(): number | undefined {
    const now = Date.now();
    let next: number | undefined;
    for (const message of this.stored) {
      if (message.invisibleUntil > now) next = Math.min(next ?? Infinity, message.invisibleUntil);
    }
    return next;
  }

  /** Everything in the queue, received or not, oldest first. */
  messages(): QueuedMessage[] {
    return [...this.stored].map((message) => ({
      messageId: message.messageId,
      body: message.body,
      sentAt: new Date(message.sentAt).toISOString(),
      receiveCount: message.receivesBeforeDeadLetter ?? message.receiveCount,
      ...(message.deadLetterSourceArn ? { deadLetterSourceArn: message.deadLetterSourceArn } : {}),
    }));
  }

  /** Takes up to `max` visible messages out of the queue for good (a message move task's step). */
  takeVisible(max: number): Stored[] {
    const now = Date.now();
    const taken = [...this.stored].filter((message) => message.invisibleUntil <= now).slice(0, max);
    for (const message of taken) this.remove(message);
    return taken;
  }

  /** Called whenever a message arrives. */
  onMessage(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  clear(): void {
    this.stored.clear();
    this.byReceiptHandle.clear();
  }

  private remove(message: Stored): void {
    this.stored.delete(message);
    if (message.receiptHandle) this.byReceiptHandle.delete(message.receiptHandle);
  }
}

/** A message move task's state, as ListMessageMoveTasks reports it. */
interface MoveTask {
  taskHandle: string;
  source: LocalQueue;
  destination?: LocalQueue;
  ratePerSecond?: number;
  status: 'RUNNING' | 'COMPLETED' | 'CANCELLED' | 'FAILED';
  moved: number;
  toMove: number;
  startedAt: number;
  failureReason?: string;
  timer?: NodeJS.Timeout;
}

/** The queues of the account, by URL and ARN, and the message move tasks between them. */
export class LocalSqs {
  private readonly queues: LocalQueue[] = [];
  private tasks: MoveTask[] = [];

  add(queue: LocalQueue): LocalQueue {
    this.queues.push(queue);
    return queue;
  }

  byUrl(url: unknown): LocalQueue | undefined {
    return this.queues.find((queue) => queue.url === url);
  }

  byArn(arn: unknown): LocalQueue | undefined {
    return this.queues.find((queue) => queue.arn === arn);
  }

  byName(name: unknown): LocalQueue | undefined {
    return this.queues.find((queue) => queue.name === name);
  }

  /** The queues whose redrive policy names `deadLetterQueue`. */
  sourcesOf(deadLetterQueue: LocalQueue): LocalQueue[] {
    return this.queues.filter((queue) => queue.settings.redrivePolicy?.deadLetterQueue === deadLetterQueue);
  }

  /**
   * StartMessageMoveTask: moves the visible messages of a dead-letter queue, at a
   * rate, to `destination` or, when none is given, each back to the queue it was
   * dead-lettered from.
   */
  startMove(source: LocalQueue, destination: LocalQueue | undefined, ratePerSecond: number | undefined): MoveTask {
    if (!this.sourcesOf(source).length) throw new SqsApiError('InvalidParameterValue', 'Source queue must be configured as a Dead Letter Queue.');
    if (this.tasks.some((task) => task.source === source && task.status === 'RUNNING')) {
      throw new SqsApiError('InvalidParameterValue', 'There is already a task running. Only one active task is allowed for a source queue arn at a given time.');
    }
    const task: MoveTask = {
      taskHandle: Buffer.from(JSON.stringify({ taskId: randomUUID(), sourceArn: source.arn })).toString('base64'),
      source,
      destination,
      ratePerSecond,
      status: 'RUNNING',
      moved: 0,
      toMove: source.counts().visible,
      startedAt: Date.now(),
    };
    this.tasks.push(task);
    const perTick = Math.max(1, Math.round(((ratePerSecond ?? DEFAULT_MOVE_RATE_PER_SECOND) * MOVE_TICK_MS) / 1000));
    const step = () => {
      const remaining = task.toMove - task.moved;
      for (const message of source.takeVisible(Math.min(perTick, remaining))) {
        const target = destination ?? this.byArn(message.deadLetterSourceArn);
        if (!target) {
          // Put back: a dead letter whose source queue is gone fails the task, as in SQS.
          source.send(message.body, { ...message });
          task.status = 'FAILED';
          task.failureReason = 'AWS.SimpleQueueService.NonExistentQueue';
          return;
        }
        target.send(message.body, { messageId: message.messageId, sentAt: message.sentAt });
        task.moved += 1;
      }
      if (task.moved >= task.toMove || source.counts().visible === 0) task.status = 'COMPLETED';
      else task.timer = setTimeout(step, MOVE_TICK_MS);
    };
    step();
    return task;
  }

  cancelMove(taskHandle: string): MoveTask {
    const task = this.tasks.find((candidate) => candidate.taskHandle === taskHandle);
    if (!task) throw new SqsApiError('ResourceNotFoundException', 'The resource that you specified for the TaskHandle parameter does not exist.');
    if (task.status !== 'RUNNING') throw new SqsApiError('UnsupportedOperation', 'Only a running task can be cancelled.');
    clearTimeout(task.timer);
    task.status = 'CANCELLED';
    return task;
  }

  /** The most recent tasks of a source queue first. */
  movesOf(source: LocalQueue): MoveTask[] {
    return this.tasks.filter((task) => task.source === source).reverse();
  }

  /** Empties every queue and forgets the tasks. */
  clear(): void {
    for (const task of this.tasks) clearTimeout(task.timer);
    this.tasks = [];
    for (const queue of this.queues) queue.clear();
  }
}

/** An error SQS answers a request with, in the JSON protocol. */
export class SqsApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** The answer to one SQS JSON-protocol request. */
export interface SqsResponse {
  status: number;
  contentType: string;
  body: string;
  requestId: string;
  /** The legacy error code header the SDK reads (x-amzn-query-error). */
  queryError?: string;
}

/**
 * Answers SQS in the AWS JSON 1.0 protocol it speaks (the SDK and the AWS CLI):
 * the operation in `X-Amz-Target: AmazonSQS.<Operation>`, JSON in and out.
 */
export function answerSqs(target: string | undefined, body: string, sqs: LocalSqs): SqsResponse {
  const requestId = newRequestId();
  try {
    const input = parseInput(body);
    const output = run(target?.replace(/^AmazonSQS\./, '') ?? '', input, sqs);
    return { status: 200, contentType: JSON_1_0, body: JSON.stringify(output), requestId };
  } catch (error) {
    if (!(error instanceof SqsApiError)) throw error;
    return {
      status: error.status,
      contentType: JSON_1_0,
      body: JSON.stringify({ __type: `com.amazonaws.sqs#${error.code}`, message: error.message }),
      requestId,
      queryError: `${error.code};Sender`,
    };
  }
}

function run(operation: string, input: Record<string, unknown>, sqs: LocalSqs): unknown {
  switch (operation) {
    case 'GetQueueUrl': {
      const queue = sqs.byName(input.QueueName);
      if (!queue) throw nonExistentQueue();
      return { QueueUrl: queue.url };
    }
    case 'SendMessage': {
      const queue = queueOf(sqs, input);
      if (typeof input.MessageBody !== 'string' || !input.MessageBody) throw missing('MessageBody');
      return { MessageId: queue.send(input.MessageBody), MD5OfMessageBody: md5(input.MessageBody) };
    }
    case 'ReceiveMessage': {
      const queue = queueOf(sqs, input);
      const max = numberIn(input.MaxNumberOfMessages, 1, MAX_RECEIVE, 1, 'MaxNumberOfMessages');
      const visibility = input.VisibilityTimeout === undefined ? undefined : numberIn(input.VisibilityTimeout, 0, 43_200, 0, 'VisibilityTimeout') * 1000;
      const wanted = new Set([...stringList(input.AttributeNames), ...stringList(input.MessageSystemAttributeNames)]);
      const messages = queue.receive(max, visibility).map((message) => ({
        MessageId: message.messageId,
        ReceiptHandle: message.receiptHandle,
        MD5OfBody: message.md5OfBody,
        Body: message.body,
        ...(wanted.size ? { Attributes: Object.fromEntries(Object.entries(message.attributes).filter(([name]) => wanted.has('All') || wanted.has(name))) } : {}),
      }));
      return messages.length ? { Messages: messages } : {};
    }
    case 'DeleteMessage': {
      const queue = queueOf(sqs, input);
      if (typeof input.ReceiptHandle !== 'string' || !input.ReceiptHandle) throw missing('ReceiptHandle');
      queue.delete(input.ReceiptHandle);
      return {};
    }
    case 'ChangeMessageVisibility': {
      const queue = queueOf(sqs, input);
      if (typeof input.ReceiptHandle !== 'string' || !input.ReceiptHandle) throw missing('ReceiptHandle');
      const seconds = numberIn(input.VisibilityTimeout, 0, 43_200, 0, 'VisibilityTimeout');
      if (!queue.changeVisibility(input.ReceiptHandle, seconds * 1000)) {
        throw new SqsApiError('InvalidParameterValue', `Value ${input.ReceiptHandle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.`);
      }
      return {};
    }
    case 'GetQueueAttributes': {
      const queue = queueOf(sqs, input);
      const { visible, inFlight } = queue.counts();
      const redrive = queue.settings.redrivePolicy;
      const all: Record<string, string> = {
        QueueArn: queue.arn,
        ApproximateNumberOfMessages: String(visible),
        ApproximateNumberOfMessagesNotVisible: String(inFlight),
        ApproximateNumberOfMessagesDelayed: '0',
        VisibilityTimeout: String(Math.round(queue.settings.visibilityTimeoutMs / 1000)),
        SqsManagedSseEnabled: 'true',
        ...(redrive ? { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: redrive.deadLetterQueue.arn, maxReceiveCount: redrive.maxReceiveCount }) } : {}),
      };
      const names = stringList(input.AttributeNames);
      return { Attributes: names.includes('All') ? all : Object.fromEntries(Object.entries(all).filter(([name]) => names.includes(name))) };
    }
    case 'StartMessageMoveTask': {
      const source = sqs.byArn(input.SourceArn);
      if (!source) throw nonExistentQueue();
      let destination: LocalQueue | undefined;
      if (input.DestinationArn !== undefined) {
        destination = sqs.byArn(input.DestinationArn);
        if (!destination) throw nonExistentQueue();
      }
      const rate = input.MaxNumberOfMessagesPerSecond === undefined ? undefined : numberIn(input.MaxNumberOfMessagesPerSecond, 1, 500, 1, 'MaxNumberOfMessagesPerSecond');
      return { TaskHandle: sqs.startMove(source, destination, rate).taskHandle };
    }
    case 'ListMessageMoveTasks': {
      const source = sqs.byArn(input.SourceArn);
      if (!source) throw nonExistentQueue();
      const max = numberIn(input.MaxResults, 1, 10, 1, 'MaxResults');
      return {
        Results: sqs.movesOf(source).slice(0, max).map((task) => ({
          ...(task.status === 'RUNNING' ? { TaskHandle: task.taskHandle } : {}),
          Status: task.status,
          SourceArn: task.source.arn,
          ...(task.destination ? { DestinationArn: task.destination.arn } : {}),
          ...(task.ratePerSecond ? { MaxNumberOfMessagesPerSecond: task.ratePerSecond } : {}),
          ApproximateNumberOfMessagesMoved: task.moved,
          ApproximateNumberOfMessagesToMove: task.toMove,
          ...(task.failureReason ? { FailureReason: task.failureReason } : {}),
          StartedTimestamp: task.startedAt,
        })),
      };
    }
    case 'CancelMessageMoveTask': {
      if (typeof input.TaskHandle !== 'string' || !input.TaskHandle) throw missing('TaskHandle');
      return { ApproximateNumberOfMessagesMoved: sqs.cancelMove(input.TaskHandle).moved };
    }
    default:
      throw new SqsApiError('InvalidAction', `The action ${operation || '(none)'} is not valid for this endpoint.`);
  }
}

function queueOf(sqs: LocalSqs, input: Record<string, unknown>): LocalQueue {
  if (typeof input.QueueUrl !== 'string' || !input.QueueUrl) throw missing('QueueUrl');
  const queue = sqs.byUrl(input.QueueUrl);
  if (!queue) throw nonExistentQueue();
  return queue;
}

function nonExistentQueue(): SqsApiError {
  return new SqsApiError('QueueDoesNotExist', 'The specified queue does not exist.');
}

function missing(name: string): SqsApiError {
  return new SqsApiError('MissingParameter', `The request must contain the parameter ${name}.`);
}

export function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function parseInput(body: string): Record<string, unknown> {
  try {
    const input: unknown = JSON.parse(body || '{}');
    if (input && typeof input === 'object' && !Array.isArray(input)) return input as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new SqsApiError('InvalidParameterValue', 'The request body is not a JSON object.');
}

function numberIn(value: unknown, min: number, max: number, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SqsApiError('InvalidParameterValue', `Value ${String(value)} for parameter ${name} is invalid. Must be between ${min} and ${max}.`);
  }
  return value;
}
