import { createHash, randomUUID } from 'node:crypto';
import { requestId as newRequestId } from './ids';

/** SQS's AWS JSON 1.0 content type. */
const JSON_1_0 = 'application/x-amz-json-1.0';
const DEFAULT_VISIBILITY_TIMEOUT_S = 30;
const MAX_RECEIVE = 10;

/** A message in a local queue. */
export interface QueuedMessage {
  messageId: string;
  body: string;
  sentAt: string;
}

interface Stored extends QueuedMessage {
  receiptHandle?: string;
  invisibleUntil: number;
  receiveCount: number;
}

/** One SQS queue: send, receive with a visibility timeout, delete by receipt handle. */
export class LocalQueue {
  private stored: Stored[] = [];

  constructor(readonly url: string) {}

  send(body: string): string {
    const messageId = randomUUID();
    this.stored.push({ messageId, body, sentAt: new Date().toISOString(), invisibleUntil: 0, receiveCount: 0 });
    return messageId;
  }

  /** Up to `max` visible messages, hidden for `visibilitySeconds` unless deleted. */
  receive(max: number, visibilitySeconds: number): (QueuedMessage & { receiptHandle: string })[] {
    const now = Date.now();
    const visible = this.stored.filter((message) => message.invisibleUntil <= now).slice(0, max);
    return visible.map((message) => {
      message.receiptHandle = randomUUID();
      message.invisibleUntil = now + visibilitySeconds * 1000;
      message.receiveCount += 1;
      return { messageId: message.messageId, body: message.body, sentAt: message.sentAt, receiptHandle: message.receiptHandle };
    });
  }

  /** Deletes the message last received with this handle; an unknown handle is ignored, as SQS does for stale ones. */
  delete(receiptHandle: string): void {
    this.stored = this.stored.filter((message) => message.receiptHandle !== receiptHandle);
  }

  /** Everything in the queue, received or not, oldest first. */
  messages(): QueuedMessage[] {
    return this.stored.map(({ messageId, body, sentAt }) => ({ messageId, body, sentAt }));
  }

  clear(): void {
    this.stored = [];
  }
}

/** An error SQS answers a request with, in the JSON protocol. */
class SqsApiError extends Error {
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
}

/**
 * Answers the SQS calls the redrive makes (ReceiveMessage, DeleteMessage,
 * GetQueueAttributes), in the AWS JSON 1.0 protocol SQS speaks: the operation in
 * `X-Amz-Target: AmazonSQS.<Operation>`, JSON in and out.
 */
export function answerSqs(target: string | undefined, body: string, queues: readonly LocalQueue[]): SqsResponse {
  const requestId = newRequestId();
  try {
    const input = parseInput(body);
    const queue = queues.find((candidate) => candidate.url === input.QueueUrl);
    if (!queue) throw new SqsApiError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
    const output = run(target?.replace(/^AmazonSQS\./, '') ?? '', input, queue);
    return { status: 200, contentType: JSON_1_0, body: JSON.stringify(output), requestId };
  } catch (error) {
    if (!(error instanceof SqsApiError)) throw error;
    return {
      status: error.status,
      contentType: JSON_1_0,
      body: JSON.stringify({ __type: `com.amazonaws.sqs#${error.code}`, message: error.message }),
      requestId,
    };
  }
}

function run(operation: string, input: Record<string, unknown>, queue: LocalQueue): unknown {
  switch (operation) {
    case 'ReceiveMessage': {
      const max = numberIn(input.MaxNumberOfMessages, 1, MAX_RECEIVE, 1, 'MaxNumberOfMessages');
      const visibility = numberIn(input.VisibilityTimeout, 0, 43_200, DEFAULT_VISIBILITY_TIMEOUT_S, 'VisibilityTimeout');
      const messages = queue.receive(max, visibility).map((message) => ({
        MessageId: message.messageId,
        ReceiptHandle: message.receiptHandle,
        MD5OfBody: createHash('md5').update(message.body).digest('hex'),
        Body: message.body,
      }));
      return messages.length ? { Messages: messages } : {};
    }
    case 'DeleteMessage':
      if (typeof input.ReceiptHandle !== 'string' || !input.ReceiptHandle) {
        throw new SqsApiError('MissingParameter', 'The request must contain the parameter ReceiptHandle.');
      }
      queue.delete(input.ReceiptHandle);
      return {};
    case 'GetQueueAttributes':
      return { Attributes: { ApproximateNumberOfMessages: String(queue.messages().length) } };
    default:
      throw new SqsApiError('InvalidAction', `The action ${operation || '(none)'} is not valid for this endpoint.`);
  }
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
