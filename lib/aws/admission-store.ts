import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config';
import { ConflictError } from '../errors';
import type { AdmissionPlaces, AdmissionPlacesStore } from '../engine/ports';
import { documentClient } from './clients';
import { keys, versionCondition } from './table';

/** The admission places in the table, as the engine reaches them. */
export function admissionPlaces(db: DynamoDBDocumentClient = documentClient): AdmissionPlacesStore {
  return {
    get: (serviceId, accountId) => getAdmissionPlaces(serviceId, accountId, db),
    put: (serviceId, accountId, endpointIds, expectedVersion) => putAdmissionPlaces(serviceId, accountId, endpointIds, expectedVersion, db),
  };
}

/** Reads an account's reserved places on a service (none yet: an empty list at version 0). */
async function getAdmissionPlaces(serviceId: string, accountId: string, db: DynamoDBDocumentClient = documentClient): Promise<AdmissionPlaces> {
  const output = await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: keys.admission(serviceId, accountId), ConsistentRead: true }));
  const item = output.Item;
  return item ? { endpointIds: (item.endpointIds as string[] | undefined) ?? [], version: item.version as number } : { endpointIds: [], version: 0 };
}

/** Writes an account's places if nobody changed them since `expectedVersion`; ConflictError when somebody did. */
async function putAdmissionPlaces(
  serviceId: string,
  accountId: string,
  endpointIds: string[],
  expectedVersion: number,
  db: DynamoDBDocumentClient = documentClient,
): Promise<void> {
  const condition = versionCondition(expectedVersion === 0 ? undefined : expectedVersion);
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: { ...keys.admission(serviceId, accountId), type: 'admission', endpointIds, version: expectedVersion + 1 },
        ...condition,
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new ConflictError(`the places of account ${accountId} on ${serviceId} were changed by another writer`, { cause: error });
    }
    throw error;
  }
}
