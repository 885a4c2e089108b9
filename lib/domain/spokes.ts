import { ACCOUNT_ID, REGION } from './ids';

/**
 * A spoke: an account and Region whose endpoint services the hub decides. The stage parameter
 * `spokes` lists them as `account:region` (stack/spokes.cjs checks the same shape at packaging);
 * the hub's own account and Region are always one.
 */
export interface Spoke {
  accountId: string;
  region: string;
}

/**
 * The tag that puts an endpoint service under management; in a spoke it is also what lets the
 * hub's role act on the service (stack/spoke.yml).
 */
export const MANAGED_TAG = { key: 'vpce-gatekeeper:managed', value: 'true' } as const;

export const SPOKE_MESSAGE = 'must be account:region, such as 222233334444:eu-west-1';

/** `222233334444:eu-west-1` as a spoke; undefined when it is not one. */
export function parseSpoke(text: string): Spoke | undefined {
  const [accountId = '', region = '', ...rest] = text.split(':');
  if (rest.length > 0 || !ACCOUNT_ID.test(accountId) || !REGION.test(region)) return undefined;
  return { accountId, region };
}

/** The AWS partition a Region is in. */
export function partitionOf(region: string): 'aws' | 'aws-cn' | 'aws-us-gov' {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The ARN of the topic stack/spoke.yml creates in a spoke, named `topicName`. */
export function spokeTopicArn(spoke: Spoke, topicName: string): string {
  return `arn:${partitionOf(spoke.region)}:sns:${spoke.region}:${spoke.accountId}:${topicName}`;
}

/** What SNS sends into a subscribed queue whose subscription waits for confirmation (or was removed). */
export interface SubscriptionMessage {
  type: 'SubscriptionConfirmation' | 'UnsubscribeConfirmation';
  topicArn: string;
  token: string;
}

/**
 * A SubscriptionConfirmation or UnsubscribeConfirmation from SNS (JSON, not raw: it is no
 * notification); undefined for anything else. Never throws.
 */
export function parseSubscriptionMessage(body: string): SubscriptionMessage | undefined {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof document !== 'object' || document === null) return undefined;
  const { Type: type, TopicArn: topicArn, Token: token } = document as Record<string, unknown>;
  if (type !== 'SubscriptionConfirmation' && type !== 'UnsubscribeConfirmation') return undefined;
  if (typeof topicArn !== 'string' || typeof token !== 'string') return undefined;
  return { type, topicArn, token };
}

/** The Region of a topic from its ARN (arn:partition:sns:region:account:name). */
export function topicRegion(topicArn: string): string | undefined {
  return topicArn.split(':')[3] || undefined;
}
