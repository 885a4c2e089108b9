import { ConfirmSubscriptionCommand, SNSClient } from '@aws-sdk/client-sns';
import { config } from '../config';

// One client per Region: a topic's subscription is confirmed by SNS in the topic's Region.
const clients = new Map<string, SNSClient>();

function clientIn(region: string): SNSClient {
  let client = clients.get(region);
  if (!client) {
    client = new SNSClient({ region, maxAttempts: config().AWS_MAX_ATTEMPTS });
    clients.set(region, client);
  }
  return client;
}

/** ConfirmSubscription of a topic in `region`, with the token SNS sent; returns the subscription's ARN. */
export async function confirmSubscription(topicArn: string, token: string, region: string): Promise<string | undefined> {
  const output = await clientIn(region).send(new ConfirmSubscriptionCommand({ TopicArn: topicArn, Token: token }));
  return output.SubscriptionArn;
}
