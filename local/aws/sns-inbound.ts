import { randomUUID } from 'node:crypto';
import type { Faults } from './faults';
import { logLocal } from '../log';
import type { LocalQueue } from './sqs';
import { requireMessageSize } from './sns-outbound';

/** A message as it was published to the inbound topic. */
export interface InboundMessage {
  messageId: string;
  message: string;
  publishedAt: string;
  /** Lost before delivery (the dropNotifications fault). */
  dropped?: true;
}

export interface InboundSnsOptions {
  topicArn: string;
  /** The subscribed queue, with raw message delivery: each copy's body is the published message as is. */
  queue: LocalQueue;
  faults: Faults;
}

/**
 * The notification topic and its one subscription: the notifications queue, with
 * raw message delivery. SNS delivers at least once and in no set order; the
 * delivery faults act here, between the topic and the queue: copies
 * (duplicateDeliveries), scrambled order (shuffleDeliveries) and loss
 * (dropNotifications).
 */
export class InboundSns {
  private timers = new Set<NodeJS.Timeout>();
  private published: InboundMessage[] = [];
  // Bumped on reset, so that deliveries scheduled before it do nothing.
  private generation = 0;

  constructor(private readonly options: InboundSnsOptions) {}

  get topicArn(): string {
    return this.options.topicArn;
  }

  /** Publishes a message to the topic; returns its MessageId. Over SNS's 256 KiB, SnsApiError and nothing published. */
  publish(message: string): string {
    requireMessageSize(Buffer.byteLength(message));
    const messageId = randomUUID();
    const publishedAt = new Date().toISOString();
    if (this.options.faults.dropNotification()) {
      this.published.push({ messageId, message, publishedAt, dropped: true });
      logLocal('info', 'notification dropped before delivery (dropNotifications)', { messageId });
      return messageId;
    }
    this.published.push({ messageId, message, publishedAt });
    const copies = this.options.faults.deliveriesPerNotification();
    for (let copy = 0; copy < copies; copy += 1) {
      const delayMs = this.options.faults.deliveryDelayMs();
      if (delayMs === 0) this.options.queue.send(message);
      else this.schedule(delayMs, () => this.options.queue.send(message));
    }
    return messageId;
  }

  /** Every message published to the topic since the last reset, in order. */
  messages(): InboundMessage[] {
    return this.published.map((message) => ({ ...message }));
  }

  /** Deliveries to the queue held back (shuffleDeliveries) and not made yet. */
  pendingDeliveries(): number {
    return this.timers.size;
  }

  /** Cancels the deliveries not made yet and forgets what was published. */
  reset(): void {
    this.generation += 1;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.published = [];
  }

  private schedule(delayMs: number, run: () => void): void {
    const generation = this.generation;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (generation === this.generation) run();
    }, delayMs);
    this.timers.add(timer);
  }
}
