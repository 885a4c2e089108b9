import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config';
import { documentClient } from './clients';
import { keys, TTL_ATTRIBUTE } from './table';

export interface Delivery {
  serviceId: string;
  endpointId: string;
  eventType: string;
}

/**
 * Takes the right to handle one notification (an event about one endpoint) for
 * a lease. False when another delivery of the same notification holds it: SNS
 * delivers at least once, and the copies need not each read EC2. The mark
 * expires on its own (TTL), so a delivery that dies leaves nothing stuck.
 */
export async function claimDelivery(delivery: Delivery, db: DynamoDBDocumentClient = documentClient): Promise<boolean> {
  const now = Math.floor(Date.now() / 1000);
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: {
          ...keys.delivery(delivery.serviceId, delivery.eventType, delivery.endpointId),
          type: 'delivery',
          [TTL_ATTRIBUTE]: now + config().DECISION_LEASE_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(pk) OR #expires < :now',
        ExpressionAttributeNames: { '#expires': TTL_ATTRIBUTE },
        ExpressionAttributeValues: { ':now': now },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Gives the right back, so that the retry of a failed delivery is not taken for a copy. */
export async function releaseDelivery(delivery: Delivery, db: DynamoDBDocumentClient = documentClient): Promise<void> {
  await db.send(
    new DeleteCommand({
      TableName: config().TABLE_NAME,
      Key: keys.delivery(delivery.serviceId, delivery.eventType, delivery.endpointId),
    }),
  );
}
