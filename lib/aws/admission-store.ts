import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config';
import { documentClient } from './clients';
import { keys, versionCondition } from './table';

/** The endpoints reserved against an account's limit on one service, and the version they were written at. */
export interface AdmissionPlaces {
  endpointIds: string[];
  version: number;
}

/** Reads an account's reserved places on a service (none yet: an empty list at version 0). */
export async function getAdmissionPlaces(serviceId: string, accountId: string, db: DynamoDBDocumentClient = documentClient): Promise<AdmissionPlaces> {
  const output = await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: keys.admission(serviceId, accountId), ConsistentRead: true }));
  const item = output.Item;
  return item ? { endpointIds: (item.endpointIds as string[] | undefined) ?? [], version: item.version as number } : { endpointIds: [], version: 0 };
}

/** Writes an account's places if nobody changed them since `expectedVersion`; false when somebody did. */
export async function putAdmissionPlaces(
  serviceId: string,
  accountId: string,
  endpointIds: string[],
  expectedVersion: number,
  db: DynamoDBDocumentClient = documentClient,
): Promise<boolean> {
  const condition = versionCondition(expectedVersion === 0 ? undefined : expectedVersion);
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: { ...keys.admission(serviceId, accountId), type: 'admission', endpointIds, version: expectedVersion + 1 },
        ...condition,
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
