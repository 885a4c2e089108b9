import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { SlackMessageItem } from '../slack/message-sync';
import { ConflictError } from '../errors';
import { config } from '../config';
import { documentClient } from './clients';
import { keys, TTL_ATTRIBUTE, versionCondition } from './table';

/** The Slack message about a connection, or undefined when none was posted or asked for. */
export async function getSlackMessage(serviceId: string, endpointId: string, db: DynamoDBDocumentClient = documentClient): Promise<SlackMessageItem | undefined> {
  const output = await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: keys.slackMessage(serviceId, endpointId), ConsistentRead: true }));
  if (!output.Item) return undefined;
  const { pk: _pk, sk: _sk, type: _type, ...item } = output.Item;
  return item as SlackMessageItem;
}

/** Writes the item if the table still holds `expectedVersion` of it (undefined: none); ConflictError otherwise. */
export async function putSlackMessage(item: SlackMessageItem, expectedVersion: number | undefined, db: DynamoDBDocumentClient = documentClient): Promise<void> {
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: { ...keys.slackMessage(item.serviceId, item.endpointId), type: 'slack-message', ...item },
        ...versionCondition(expectedVersion),
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new ConflictError(`the Slack message about ${item.endpointId} was changed by another writer`, { cause: error });
    }
    throw error;
  }
}

/**
 * Remembers a Slack request by its signature until `expiresAt` (Unix seconds).
 * False when it was already remembered and has not expired: the request is a
 * replay. DynamoDB's TTL deletes expired items only eventually, so the
 * condition checks the expiry itself.
 */
export async function rememberSlackRequest(signature: string, expiresAt: number, now: Date, db: DynamoDBDocumentClient = documentClient): Promise<boolean> {
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: { ...keys.slackRequest(signature), type: 'slack-request', [TTL_ATTRIBUTE]: expiresAt },
        ConditionExpression: 'attribute_not_exists(pk) OR #expiresAt < :now',
        ExpressionAttributeNames: { '#expiresAt': TTL_ATTRIBUTE },
        ExpressionAttributeValues: { ':now': Math.floor(now.getTime() / 1000) },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
