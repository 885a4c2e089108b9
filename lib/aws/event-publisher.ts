import { PublishBatchCommand, type PublishBatchRequestEntry, type SNSClient } from '@aws-sdk/client-sns';
import type { PublishedEvent } from '../domain/outbound-event';
import { outboundTopicArn } from '../config';
import { snsClient } from './clients';

/** SNS's limits on one PublishBatch call: entries, and bytes of messages and attributes together. */
const MAX_BATCH_ENTRIES = 10;
const MAX_BATCH_BYTES = 262_144;

/** An event waiting for its batch, and the caller waiting for it. */
interface Waiting {
  entry: PublishBatchRequestEntry;
  bytes: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** One entry SNS refused in a PublishBatch call; the others of the call may have gone out. */
export class PublishFailedError extends Error {
  override readonly name = 'PublishFailedError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const waiting = new Map<SNSClient, Waiting[]>();

/**
 * Publishes one event to the outbound topic, with attributes for subscription
 * filter policies. Events asked for in the same turn of the event loop go out
 * together, ten to a PublishBatch call, so a batch of decisions costs a tenth of
 * the calls; each caller still learns whether its own event went out.
 */
export function publishEvent(event: PublishedEvent, client: SNSClient = snsClient): Promise<void> {
  const entry: PublishBatchRequestEntry = {
    Id: String(event.eventId).replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80),
    Message: JSON.stringify(event),
    MessageAttributes: {
      eventType: { DataType: 'String', StringValue: event.eventType },
      serviceId: { DataType: 'String', StringValue: event.serviceId },
    },
  };
  // More than SNS counts (the message and its attributes), never less.
  const bytes = Buffer.byteLength(JSON.stringify(entry));
  return new Promise((resolve, reject) => {
    let queue = waiting.get(client);
    if (!queue) {
      queue = [];
      waiting.set(client, queue);
      setImmediate(() => {
        waiting.delete(client);
        void sendAll(client, queue ?? []);
      });
    }
    queue.push({ entry, bytes, resolve, reject });
  });
}

async function sendAll(client: SNSClient, queue: Waiting[]): Promise<void> {
  await Promise.all(batchesOf(queue).map((batch) => send(client, batch)));
}

/** The waiting events in order, cut into batches within SNS's limits; two entries of a batch never share an Id. */
function batchesOf(queue: Waiting[]): Waiting[][] {
  const batches: Waiting[][] = [];
  let current: Waiting[] = [];
  let bytes = 0;
  for (const item of queue) {
    const full = current.length === MAX_BATCH_ENTRIES || bytes + item.bytes > MAX_BATCH_BYTES || current.some((other) => other.entry.Id === item.entry.Id);
    if (current.length && full) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.bytes;
  }
  if (current.length) batches.push(current);
  return batches;
}

async function send(client: SNSClient, batch: Waiting[]): Promise<void> {
  try {
    const output = await client.send(new PublishBatchCommand({ TopicArn: outboundTopicArn(), PublishBatchRequestEntries: batch.map(({ entry }) => entry) }));
    const published = new Set((output.Successful ?? []).map((success) => success.Id));
    const failed = new Map((output.Failed ?? []).map((failure) => [failure.Id, failure]));
    for (const item of batch) {
      const failure = failed.get(item.entry.Id);
      if (published.has(item.entry.Id)) item.resolve();
      else item.reject(new PublishFailedError(failure?.Code ?? 'Unknown', failure?.Message ?? 'SNS did not say it published the event'));
    }
  } catch (error) {
    const reason = error instanceof Error ? error : new Error(String(error));
    for (const item of batch) item.reject(reason);
  }
}
