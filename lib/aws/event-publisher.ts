import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { PublishedEvent } from '../domain/outbound-event';
import { outboundTopicArn } from '../config';
import { snsClient } from './clients';

/** Publishes one event to the outbound topic, with attributes for subscription filter policies. */
export async function publishEvent(event: PublishedEvent, client: SNSClient = snsClient): Promise<void> {
  await client.send(
    new PublishCommand({
      TopicArn: outboundTopicArn(),
      Message: JSON.stringify(event),
      MessageAttributes: {
        eventType: { DataType: 'String', StringValue: event.eventType },
        serviceId: { DataType: 'String', StringValue: event.serviceId },
      },
    }),
  );
}
