import { randomBytes, randomUUID } from 'node:crypto';
import { NotFoundError } from '../../lib/errors';
import type { Spoke } from '../../lib/domain/spokes';
import type { Faults } from './faults';
import { logLocal } from '../log';
import { QueryParams } from './form';
import type { QueryResponse } from '../http-io';
import { requestId as newRequestId } from './ids';
import { sameLocation } from './locations';
import { requireMessageSize, SNS_XML_NAMESPACE, SnsApiError, snsErrorResponse } from './sns-outbound';
import type { LocalQueue } from './sqs';
import { element, textElement, xmlDocument } from './xml';

/** A message as it was published to one of the inbound topics. */
export interface InboundMessage {
  messageId: string;
  /** The topic it was published to: the hub's own, or a spoke's. */
  topicArn: string;
  message: string;
  publishedAt: string;
  /** Lost before delivery (the dropNotifications fault). */
  dropped?: true;
  /** Not delivered: the topic's subscription to the queue was still pending confirmation, as SNS then delivers nothing. */
  pendingConfirmation?: true;
}

/** A topic that delivers into the notification queue: the hub's own, or a spoke's (stack/spoke.yml). */
export interface InboundTopic extends Spoke {
  topicArn: string;
}

/** A topic's subscription of the queue, as GET /local/health shows it. */
export interface InboundSubscription extends InboundTopic {
  subscriptionArn: string;
  status: 'confirmed' | 'pendingConfirmation';
}

interface Subscription extends InboundSubscription {
  token: string;
}

export interface InboundSnsOptions {
  /** The topics, each subscribed to `queue` with raw message delivery; the first is the hub's own. */
  topics: InboundTopic[];
  /** The subscribed queue: each copy's body is the published message as is. */
  queue: LocalQueue;
  faults: Faults;
  /** The SNS endpoint, for the SubscribeURL of a confirmation. */
  endpoint: string;
}

/**
 * The topics that deliver into the notification queue, with raw message delivery: the hub's own
 * and each spoke's. A topic in another account than the queue's subscribed the queue itself (its
 * stack/spoke.yml does), so SNS holds that subscription pending: it sends a SubscriptionConfirmation
 * into the queue and delivers nothing else until the queue's owner confirms (ConfirmSubscription,
 * or a GET of the SubscribeURL). SNS delivers at least once and in no set order; the delivery
 * faults act here, between the topics and the queue: copies (duplicateDeliveries), scrambled order
 * (shuffleDeliveries) and loss (dropNotifications).
 */
export class InboundSns {
  private timers = new Set<NodeJS.Timeout>();
  private published: InboundMessage[] = [];
  private readonly subscriptions: Subscription[];
  // Bumped on reset, so that deliveries scheduled before it do nothing.
  private generation = 0;

  constructor(private readonly options: InboundSnsOptions) {
    const queueAccount = options.queue.arn.split(':')[4];
    this.subscriptions = options.topics.map((topic) => ({
      ...topic,
      subscriptionArn: `${topic.topicArn}:${randomUUID()}`,
      status: topic.accountId === queueAccount ? 'confirmed' : 'pendingConfirmation',
      token: randomBytes(128).toString('hex'),
    }));
    this.requestConfirmations();
  }

  /** The hub's own topic. */
  get topicArn(): string {
    const [own] = this.subscriptions;
    if (!own) throw new Error('the inbound SNS has no topic');
    return own.topicArn;
  }

  /** The topic that delivers a location's notifications to the queue, if it has one. */
  topicIn(location: Spoke): string | undefined {
    return this.subscriptions.find((subscription) => sameLocation(subscription, location))?.topicArn;
  }

  exists(topicArn: string): boolean {
    return this.subscriptions.some((subscription) => subscription.topicArn === topicArn);
  }

  /** Every topic's subscription of the queue. */
  subscriptionsOfQueue(): InboundSubscription[] {
    return this.subscriptions.map(({ token: _token, ...subscription }) => ({ ...subscription }));
  }

  /** Publishes a message to a topic (the hub's own unless told); returns its MessageId. */
  publish(message: string, topicArn: string = this.topicArn): string {
    const subscription = this.subscriptions.find((candidate) => candidate.topicArn === topicArn);
    if (!subscription) throw new NotFoundError(`topic ${topicArn} does not exist`);
    requireMessageSize(Buffer.byteLength(message));
    const messageId = randomUUID();
    const publishedAt = new Date().toISOString();
    if (subscription.status === 'pendingConfirmation') {
      this.published.push({ messageId, topicArn, message, publishedAt, pendingConfirmation: true });
      logLocal('warn', 'notification not delivered: the subscription of the queue to its topic is pending confirmation', { messageId, topicArn });
      return messageId;
    }
    if (this.options.faults.dropNotification()) {
      this.published.push({ messageId, topicArn, message, publishedAt, dropped: true });
      logLocal('info', 'notification dropped before delivery (dropNotifications)', { messageId });
      return messageId;
    }
    this.published.push({ messageId, topicArn, message, publishedAt });
    const copies = this.options.faults.deliveriesPerNotification();
    for (let copy = 0; copy < copies; copy += 1) {
      const delayMs = this.options.faults.deliveryDelayMs();
      if (delayMs === 0) this.options.queue.send(message);
      else this.schedule(delayMs, () => this.options.queue.send(message));
    }
    return messageId;
  }

  /** Answers the SNS Query actions of the inbound topics (ConfirmSubscription), signed for the Region its Authorization scope names. */
  answer(body: string, authorization: string | undefined): QueryResponse {
    const params = QueryParams.parse(body);
    const region = /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\/sns\/aws4_request/.exec(authorization ?? '')?.[1];
    return this.confirmSubscription(params, region);
  }

  /** A GET of a confirmation's SubscribeURL: needs no credentials, as in SNS. */
  answerSubscribeUrl(query: URLSearchParams): QueryResponse {
    return this.confirmSubscription(QueryParams.parse(query.toString()), undefined);
  }

  /** Whether a topic's subscription is pending confirmation. */
  isPending(topicArn: string): boolean {
    return this.subscriptions.some((subscription) => subscription.topicArn === topicArn && subscription.status === 'pendingConfirmation');
  }

  /** Every message published to the topics since the last reset, in order. */
  messages(): InboundMessage[] {
    return this.published.map((message) => ({ ...message }));
  }

  /** Deliveries to the queue held back (shuffleDeliveries) and not made yet. */
  pendingDeliveries(): number {
    return this.timers.size;
  }

  /**
   * Cancels the deliveries not made yet and forgets what was published. The subscriptions stay
   * as they are, as a deployed stage's do; `requestConfirmations` asks again for the pending ones.
   */
  reset(): void {
    this.generation += 1;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.published = [];
  }

  /** Sends a SubscriptionConfirmation into the queue for each subscription still pending. */
  requestConfirmations(): void {
    for (const subscription of this.subscriptions) {
      if (subscription.status === 'pendingConfirmation') this.options.queue.send(JSON.stringify(this.confirmationMessage(subscription)));
    }
  }

  private confirmSubscription(params: QueryParams, region: string | undefined): QueryResponse {
    const requestId = newRequestId();
    try {
      const action = params.get('Action') ?? '';
      if (action !== 'ConfirmSubscription') throw new SnsApiError('InvalidAction', `Unrecognized or unsupported action: ${action || '(none)'}`);
      const topicArn = params.get('TopicArn');
      const token = params.get('Token');
      if (!topicArn) throw new SnsApiError('InvalidParameter', 'Invalid parameter: TopicArn');
      if (!token) throw new SnsApiError('InvalidParameter', 'Invalid parameter: Token');
      const subscription = this.subscriptions.find((candidate) => candidate.topicArn === topicArn);
      // A topic lives in one Region: SNS in another does not know it.
      if (!subscription || (region !== undefined && subscription.region !== region)) throw new SnsApiError('NotFound', 'Topic does not exist', 404);
      if (token !== subscription.token) throw new SnsApiError('InvalidParameter', 'Invalid token');
      if (subscription.status === 'pendingConfirmation') logLocal('info', 'subscription confirmed', { topicArn });
      subscription.status = 'confirmed';
      const root = element(
        'ConfirmSubscriptionResponse',
        [
          element('ConfirmSubscriptionResult', [textElement('SubscriptionArn', subscription.subscriptionArn)]),
          element('ResponseMetadata', [textElement('RequestId', requestId)]),
        ],
        { xmlns: SNS_XML_NAMESPACE },
      );
      return { status: 200, xml: xmlDocument(root), requestId };
    } catch (error) {
      if (error instanceof SnsApiError) return snsErrorResponse(error, requestId);
      throw error;
    }
  }

  /** The JSON SNS sends to an endpoint whose subscription waits for confirmation (not raw: it is not a notification). */
  private confirmationMessage(subscription: Subscription): Record<string, string> {
    const query = new URLSearchParams({ Action: 'ConfirmSubscription', TopicArn: subscription.topicArn, Token: subscription.token });
    return {
      Type: 'SubscriptionConfirmation',
      MessageId: randomUUID(),
      Token: subscription.token,
      TopicArn: subscription.topicArn,
      Message: `You have chosen to subscribe to the topic ${subscription.topicArn}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`,
      SubscribeURL: `${this.options.endpoint}?${query.toString()}`,
      Timestamp: new Date().toISOString(),
      SignatureVersion: '1',
      Signature: randomBytes(256).toString('base64'),
      SigningCertURL: `https://sns.${subscription.region}.amazonaws.com/SimpleNotificationService-local.pem`,
    };
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
