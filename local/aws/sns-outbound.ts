import { QueryParams } from './form';
import { requestId as newRequestId } from './ids';
import type { QueryResponse } from '../http-io';
import { element, textElement, xmlDocument } from './xml';
import { checkFilterPolicy, matchesFilterPolicy, type FilterPolicy, type MessageAttribute } from './sns-filter-policy';

/** The XML namespace of every SNS response. */
export const SNS_XML_NAMESPACE = 'http://sns.amazonaws.com/doc/2010-03-31/';

const MAX_BATCH_ENTRIES = 10;
/** The most bytes one message and its attributes may have (256 KiB), and a PublishBatch's messages together. */
export const MAX_MESSAGE_BYTES = 262_144;
const MAX_BATCH_BYTES = MAX_MESSAGE_BYTES;
const BATCH_ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;

export type { MessageAttribute };

/** One message published to a local topic. */
export interface PublishedMessage {
  messageId: string;
  topicArn: string;
  /** The message parsed as JSON, or the raw string if it is not JSON. */
  message: unknown;
  subject?: string;
  messageAttributes: Record<string, MessageAttribute>;
  publishedAt: string;
}

/** An error SNS answers a whole request with. */
export class SnsApiError extends Error {
  override readonly name = 'SnsApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly type: 'Sender' | 'Receiver' = 'Sender',
  ) {
    super(message);
  }
}

/** A Lambda function subscribed to a topic: SNS invokes it asynchronously with one record per message. */
export interface LambdaSubscription {
  topicArn: string;
  /** Only messages whose attributes match are delivered (FilterPolicyScope MessageAttributes). */
  filterPolicy?: FilterPolicy;
  /** Invokes the function (asynchronously) with SNS's Lambda event. */
  invoke: (event: SnsLambdaEvent) => void;
}

/** The event SNS invokes a Lambda subscriber with. */
export interface SnsLambdaEvent {
  Records: {
    EventSource: 'aws:sns';
    EventVersion: '1.0';
    EventSubscriptionArn: string;
    Sns: {
      Type: 'Notification';
      MessageId: string;
      TopicArn: string;
      Subject: string | null;
      Message: string;
      Timestamp: string;
      SignatureVersion: '1';
      Signature: string;
      SigningCertUrl: string;
      UnsubscribeUrl: string;
      MessageAttributes: Record<string, { Type: string; Value: string }>;
    };
  }[];
}

/**
 * The topics the handler publishes to, speaking the SNS Query protocol
 * (Publish and PublishBatch), keeping every message in publish order, and
 * delivering each to the Lambda functions subscribed whose filter policy it matches.
 */
export class OutboundSns {
  private published: PublishedMessage[] = [];
  private subscriptions: (LambdaSubscription & { arn: string })[] = [];

  constructor(private readonly topicArns: ReadonlySet<string>) {}

  /** Answers one form-encoded SNS request. */
  answer(body: string): QueryResponse {
    const params = QueryParams.parse(body);
    const action = params.get('Action') ?? '';
    const requestId = newRequestId();
    try {
      const result = this.run(action, params);
      const root = element(
        `${action}Response`,
        [element(`${action}Result`, result), element('ResponseMetadata', [textElement('RequestId', requestId)])],
        { xmlns: SNS_XML_NAMESPACE },
      );
      return { status: 200, xml: xmlDocument(root), requestId };
    } catch (error) {
      if (error instanceof SnsApiError) return snsErrorResponse(error, requestId);
      throw error;
    }
  }

  /** Everything published since the last reset, in order. */
  messages(): PublishedMessage[] {
    return this.published.map((message) => ({ ...message }));
  }

  clear(): void {
    this.published = [];
  }

  /** Subscribes a Lambda function to a topic; returns the subscription's ARN. */
  subscribe(subscription: LambdaSubscription): string {
    if (!this.topicArns.has(subscription.topicArn)) throw new SnsApiError('NotFound', 'Topic does not exist', 404);
    if (subscription.filterPolicy) checkFilterPolicy(subscription.filterPolicy);
    const arn = `${subscription.topicArn}:${newRequestId()}`;
    this.subscriptions.push({ ...subscription, arn });
    return arn;
  }

  /** Hands a message to each matching subscription once the publish has answered, as SNS delivers after it accepts. */
  private deliver(published: PublishedMessage, rawMessage: string): void {
    for (const subscription of this.subscriptions) {
      if (subscription.topicArn !== published.topicArn) continue;
      if (subscription.filterPolicy && !matchesFilterPolicy(subscription.filterPolicy, published.messageAttributes)) continue;
      setImmediate(() => subscription.invoke(snsLambdaEvent(subscription.arn, published, rawMessage)));
    }
  }

  private run(action: string, params: QueryParams): string[] {
    switch (action) {
      case 'Publish':
        return [textElement('MessageId', this.publish(this.topicOf(params), params))];
      case 'PublishBatch':
        return this.publishBatch(params);
      default:
        throw new SnsApiError('InvalidAction', `Unrecognized or unsupported action: ${action || '(none)'}`);
    }
  }

  private topicOf(params: QueryParams): string {
    const topicArn = params.get('TopicArn') ?? params.get('TargetArn');
    if (!topicArn) throw new SnsApiError('InvalidParameter', 'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter');
    if (!this.topicArns.has(topicArn)) throw new SnsApiError('NotFound', 'Topic does not exist', 404);
    return topicArn;
  }

  private publish(topicArn: string, entry: QueryParams): string {
    const message = entry.get('Message');
    if (message === undefined || message === '') throw new SnsApiError('InvalidParameter', 'Invalid parameter: Message');
    requireMessageSize(entryBytes(entry));
    const messageId = newRequestId();
    const published: PublishedMessage = {
      messageId,
      topicArn,
      message: parseIfJson(message),
      subject: entry.get('Subject'),
      messageAttributes: messageAttributesOf(entry),
      publishedAt: new Date().toISOString(),
    };
    this.published.push(published);
    this.deliver(published, message);
    return messageId;
  }

  private publishBatch(params: QueryParams): string[] {
    const topicArn = this.topicOf(params);
    const entries = params.structures('PublishBatchRequestEntries.member');
    if (entries.length === 0) throw new SnsApiError('EmptyBatchRequest', 'The batch request doesn\'t contain any entries.');
    if (entries.length > MAX_BATCH_ENTRIES) {
      throw new SnsApiError('TooManyEntriesInBatchRequest', `The batch request contains more entries than permissible (${MAX_BATCH_ENTRIES}).`);
    }
    const ids = entries.map((entry) => entry.get('Id') ?? '');
    const badId = ids.find((id) => !BATCH_ENTRY_ID.test(id));
    if (badId !== undefined) {
      throw new SnsApiError('InvalidBatchEntryId', `The batch entry id '${badId}' is not 1 to 80 letters, digits, hyphens and underscores.`);
    }
    if (new Set(ids).size !== ids.length) throw new SnsApiError('BatchEntryIdsNotDistinct', 'Two or more batch entries in the request have the same Id.');
    if (entries.reduce((total, entry) => total + entryBytes(entry), 0) > MAX_BATCH_BYTES) {
      throw new SnsApiError('BatchRequestTooLong', `The length of all the messages put together is more than the limit (${MAX_BATCH_BYTES} bytes).`);
    }
    const successful: string[] = [];
    const failed: string[] = [];
    for (const entry of entries) {
      const id = entry.get('Id') ?? '';
      try {
        const messageId = this.publish(topicArn, entry);
        successful.push(element('member', [textElement('Id', id), textElement('MessageId', messageId)]));
      } catch (error) {
        if (!(error instanceof SnsApiError)) throw error;
        failed.push(
          element('member', [
            textElement('Id', id),
            textElement('Code', error.code),
            textElement('SenderFault', error.type === 'Sender'),
            textElement('Message', error.message),
          ]),
        );
      }
    }
    return [element('Successful', successful), element('Failed', failed)];
  }
}

/** SNS's Lambda event for one message, as a subscription receives it. */
function snsLambdaEvent(subscriptionArn: string, published: PublishedMessage, rawMessage: string): SnsLambdaEvent {
  return {
    Records: [
      {
        EventSource: 'aws:sns',
        EventVersion: '1.0',
        EventSubscriptionArn: subscriptionArn,
        Sns: {
          Type: 'Notification',
          MessageId: published.messageId,
          TopicArn: published.topicArn,
          Subject: published.subject ?? null,
          Message: rawMessage,
          Timestamp: published.publishedAt,
          SignatureVersion: '1',
          Signature: Buffer.from(published.messageId).toString('base64'),
          SigningCertUrl: 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-local.pem',
          UnsubscribeUrl: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${subscriptionArn}`,
          MessageAttributes: Object.fromEntries(
            Object.entries(published.messageAttributes).map(([name, attribute]) => [name, { Type: attribute.DataType, Value: attribute.StringValue ?? attribute.BinaryValue ?? '' }]),
          ),
        },
      },
    ],
  };
}

/** Refuses a message (with its attributes) over SNS's 256 KiB, as SNS does: InvalidParameter, nothing published. */
export function requireMessageSize(bytes: number): void {
  if (bytes > MAX_MESSAGE_BYTES) throw new SnsApiError('InvalidParameter', 'Invalid parameter: Message too long');
}

/** What SNS counts of an entry against the message's and the batch's size: the message, and each attribute's name, type and value. */
function entryBytes(entry: QueryParams): number {
  const attributes = entry.structures('MessageAttributes.entry');
  const attributeBytes = attributes.reduce(
    (total, attribute) =>
      total + ['Name', 'Value.DataType', 'Value.StringValue', 'Value.BinaryValue'].reduce((sum, key) => sum + Buffer.byteLength(attribute.get(key) ?? ''), 0),
    0,
  );
  return Buffer.byteLength(entry.get('Message') ?? '') + attributeBytes;
}

/** MessageAttributes.entry.N.Name / .Value.DataType / .Value.StringValue / .Value.BinaryValue. */
function messageAttributesOf(params: QueryParams): Record<string, MessageAttribute> {
  const attributes: Array<[string, MessageAttribute]> = [];
  for (const entry of params.structures('MessageAttributes.entry')) {
    const name = entry.get('Name');
    const dataType = entry.get('Value.DataType');
    if (!name) throw new SnsApiError('InvalidParameterValue', 'A message attribute has no name.');
    if (!dataType) {
      throw new SnsApiError('InvalidParameterValue', `The message attribute '${name}' must contain non-empty message attribute type.`);
    }
    const stringValue = entry.get('Value.StringValue');
    const binaryValue = entry.get('Value.BinaryValue');
    if (stringValue === undefined && binaryValue === undefined) {
      throw new SnsApiError('InvalidParameterValue', `The message attribute '${name}' must contain non-empty message attribute value.`);
    }
    attributes.push([
      name,
      {
        DataType: dataType,
        ...(stringValue === undefined ? {} : { StringValue: stringValue }),
        ...(binaryValue === undefined ? {} : { BinaryValue: binaryValue }),
      },
    ]);
  }
  return Object.fromEntries(attributes);
}

function parseIfJson(message: string): unknown {
  try {
    return JSON.parse(message);
  } catch {
    return message;
  }
}

/** The SNS Query error document. */
export function snsErrorResponse(error: SnsApiError, requestId: string): QueryResponse {
  const root = element(
    'ErrorResponse',
    [
      element('Error', [textElement('Type', error.type), textElement('Code', error.code), textElement('Message', error.message)]),
      textElement('RequestId', requestId),
    ],
    { xmlns: SNS_XML_NAMESPACE },
  );
  return { status: error.status, xml: xmlDocument(root), requestId };
}
