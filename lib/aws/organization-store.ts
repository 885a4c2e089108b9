import { BatchGetCommand, type BatchGetCommandOutput, BatchWriteCommand, GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { ConflictError } from '../errors';
import type { KnownMembership, MembershipCache, SharedPrincipals } from '../engine/ports';
import { config } from '../config';
import { documentClient } from './clients';
import { keys, TTL_ATTRIBUTE, versionCondition } from './table';

const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;

/** The memberships cached in the table, as the engine reaches them. */
export function membershipCache(db: DynamoDBDocumentClient = documentClient): MembershipCache {
  return {
    get: (accountIds) => getCachedMemberships(accountIds, db),
    put: (memberships) => putCachedMemberships(memberships, db),
  };
}

/**
 * The cached memberships of accounts that are still fresh (read less than the
 * cache TTL ago), by account id. DynamoDB's TTL deletes expired items only
 * eventually, so expiry is checked here too.
 */
async function getCachedMemberships(accountIds: readonly string[], db: DynamoDBDocumentClient = documentClient): Promise<Map<string, KnownMembership>> {
  const tableName = config().TABLE_NAME;
  const now = Date.now() / 1000;
  const found = new Map<string, KnownMembership>();
  for (let i = 0; i < accountIds.length; i += BATCH_GET_LIMIT) {
    let requestKeys: Record<string, unknown>[] | undefined = accountIds.slice(i, i + BATCH_GET_LIMIT).map(keys.membership);
    for (let attempt = 0; requestKeys?.length; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
      const output: BatchGetCommandOutput = await db.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: requestKeys } } }));
      for (const item of output.Responses?.[tableName] ?? []) {
        const expiresAt = item[TTL_ATTRIBUTE] as number | undefined;
        const membership = item.membership as KnownMembership | undefined;
        if (membership && expiresAt !== undefined && expiresAt > now) found.set(membership.accountId, membership);
      }
      requestKeys = output.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  return found;
}

/** Caches memberships for the cache TTL (from when each was read). */
async function putCachedMemberships(memberships: readonly KnownMembership[], db: DynamoDBDocumentClient = documentClient): Promise<void> {
  const tableName = config().TABLE_NAME;
  const ttl = config().ORGANIZATION_CACHE_TTL;
  for (let i = 0; i < memberships.length; i += BATCH_WRITE_LIMIT) {
    let requests: { PutRequest?: { Item: Record<string, unknown> } }[] | undefined = memberships.slice(i, i + BATCH_WRITE_LIMIT).map((membership) => ({
      PutRequest: {
        Item: {
          ...keys.membership(membership.accountId),
          type: 'membership',
          membership,
          [TTL_ATTRIBUTE]: Math.floor(Date.parse(membership.readAt) / 1000 + ttl),
        },
      },
    }));
    for (let attempt = 0; requests?.length; attempt++) {
      if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
      const output = await db.send(new BatchWriteCommand({ RequestItems: { [tableName]: requests as never } }));
      requests = output.UnprocessedItems?.[tableName] as typeof requests;
    }
  }
}

/** The principals sharing added, in the table, as the engine reaches them. */
export function sharedPrincipals(db: DynamoDBDocumentClient = documentClient): SharedPrincipals {
  return {
    get: (serviceId) => getSharedPrincipals(serviceId, db),
    put: (serviceId, principals, expectedVersion) => putSharedPrincipals(serviceId, principals, expectedVersion, db),
  };
}

/** What the reconciler added to a service's allowed principals, and the version of that record. */
export interface SharedPrincipalsRecord {
  principals: string[];
  version: number;
}

/** The principals this tool added to a service's permissions (none recorded: version 0). */
async function getSharedPrincipals(serviceId: string, db: DynamoDBDocumentClient = documentClient): Promise<SharedPrincipalsRecord> {
  const output = await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: keys.sharing(serviceId), ConsistentRead: true }));
  if (!output.Item) return { principals: [], version: 0 };
  return { principals: (output.Item.principals as string[] | undefined) ?? [], version: output.Item.version as number };
}

/** Records the principals this tool added, if the record is still at `expectedVersion`; ConflictError otherwise. */
async function putSharedPrincipals(
  serviceId: string,
  principals: string[],
  expectedVersion: number,
  db: DynamoDBDocumentClient = documentClient,
): Promise<void> {
  const condition = versionCondition(expectedVersion === 0 ? undefined : expectedVersion);
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: { ...keys.sharing(serviceId), type: 'sharing', serviceId, principals, version: expectedVersion + 1, updatedAt: new Date().toISOString() },
        ...condition,
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new ConflictError(`the shared principals of ${serviceId} were changed by another run`, { cause: error });
    }
    throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
