import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { policySchema, describeIssues, type Policy, type PolicyVersion, type StoredPolicy } from '../domain/policy';
import * as v from '../validation';
import type { PolicyChangedEvent } from '../domain/outbound-event';
import type { LatestPolicyVersion, Policies } from '../engine/ports';
import { ConflictError } from '../errors';
import { config } from '../config';
import { documentClient } from './clients';
import { decodePolicyVersionsCursor, encodeCursor } from './cursor';
import type { Page } from './connection-store';
import { keys } from './table';

export type { LatestPolicyVersion, PolicyVersion, StoredPolicy };

/** The policies in the table, as the engine reaches them. */
export function policyVersions(db: DynamoDBDocumentClient = documentClient): Policies {
  return {
    latest: (policyId) => getLatestPolicyVersion(policyId, db),
    put: (policyId, policy, options) => putPolicy(policyId, policy, options, db),
    clearOutbox: (policyId, version) => clearPolicyOutbox(policyId, version, db),
  };
}

/**
 * The newest version of a policy as stored, valid or not, with its outbox; undefined
 * when there is none. Never throws on a document that no longer validates.
 */
export async function getLatestPolicyVersion(
  policyId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<LatestPolicyVersion | undefined> {
  const output = await db.send(
    new QueryCommand({
      TableName: config().TABLE_NAME,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.policyVersions(policyId).pk },
      ScanIndexForward: false,
      Limit: 1,
      ConsistentRead: true,
    }),
  );
  const item = output.Items?.[0];
  return item ? { ...fromItem(item), outbox: outboxOf(item) } : undefined;
}

/**
 * Writes the next version of a policy; earlier versions are kept. With
 * `expectedVersion` (0: none yet), refuses (ConflictError) unless that is still
 * the newest (without: after the newest there is). The version being replaced is never parsed, so a stored document
 * that no longer validates can be replaced. `outbox` holds the policy-changed
 * events to publish, saved with the version so that none is lost.
 */
export async function putPolicy(
  policyId: string,
  policy: Policy,
  options: { actor: string; expectedVersion?: number; at?: Date; outbox?: PolicyChangedEvent[] },
  db: DynamoDBDocumentClient = documentClient,
): Promise<StoredPolicy> {
  // Writing version expectedVersion + 1 only where it does not exist yet fails when anyone wrote after expectedVersion.
  const currentVersion = options.expectedVersion ?? (await getLatestPolicyVersion(policyId, db))?.version ?? 0;
  const stored: StoredPolicy = {
    policyId,
    version: currentVersion + 1,
    policy,
    createdAt: (options.at ?? new Date()).toISOString(),
    createdBy: options.actor,
  };
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: { ...toItem(stored), ...(options.outbox?.length ? { outbox: JSON.stringify(options.outbox) } : {}) },
        // Two writers computing the same next version: exactly one wins.
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      throw new ConflictError(`policy ${policyId} was changed by another writer`, { cause: error });
    }
    throw error;
  }
  return stored;
}

/**
 * Empties a version's outbox once its events are published: the item is written
 * again without it (the writers' roles have PutItem, not UpdateItem), only if
 * it still holds the outbox that was published.
 */
async function clearPolicyOutbox(policyId: string, version: number, db: DynamoDBDocumentClient = documentClient): Promise<void> {
  const key = keys.policyVersion(policyId, version);
  const { Item: item } = await db.send(new GetCommand({ TableName: config().TABLE_NAME, Key: key, ConsistentRead: true }));
  if (typeof item?.outbox !== 'string') return;
  const { outbox, ...cleared } = item;
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: cleared,
        ConditionExpression: 'outbox = :outbox',
        ExpressionAttributeValues: { ':outbox': outbox },
      }),
    );
  } catch (error) {
    // Someone else cleared it first: their publish covered the same events.
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** One page of a policy's versions, newest first, valid or not. */
export async function listPolicyVersions(
  policyId: string,
  options: { limit: number; cursor?: string },
  db: DynamoDBDocumentClient = documentClient,
): Promise<Page<PolicyVersion>> {
  const output = await db.send(
    new QueryCommand({
      TableName: config().TABLE_NAME,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': keys.policyVersions(policyId).pk },
      ScanIndexForward: false,
      Limit: options.limit,
      ExclusiveStartKey: options.cursor ? decodePolicyVersionsCursor(options.cursor, policyId) : undefined,
    }),
  );
  return {
    items: (output.Items ?? []).map(fromItem),
    cursor: output.LastEvaluatedKey ? encodeCursor(output.LastEvaluatedKey) : undefined,
  };
}

function toItem(stored: StoredPolicy): Record<string, unknown> {
  return {
    ...keys.policyVersion(stored.policyId, stored.version),
    type: 'policy',
    policyId: stored.policyId,
    version: stored.version,
    // Kept as the JSON text that was validated, so that it round-trips exactly.
    document: JSON.stringify(stored.policy),
    createdAt: stored.createdAt,
    createdBy: stored.createdBy,
  };
}

function fromItem(item: Record<string, unknown>): PolicyVersion {
  const meta = {
    policyId: String(item.policyId),
    version: Number(item.version),
    createdAt: String(item.createdAt),
    createdBy: String(item.createdBy),
  };
  let document: unknown;
  try {
    document = JSON.parse(String(item.document));
  } catch (error) {
    return { ...meta, valid: false, policy: null, invalidReason: `the stored document is not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const parsed = v.safeParse(policySchema, document);
  if (!parsed.success) return { ...meta, valid: false, policy: document, invalidReason: `invalid policy: ${describeIssues(parsed.issues, policySchema)}` };
  return { ...meta, valid: true, policy: parsed.output };
}

function outboxOf(item: Record<string, unknown>): PolicyChangedEvent[] {
  if (typeof item.outbox !== 'string') return [];
  try {
    const events: unknown = JSON.parse(item.outbox);
    return Array.isArray(events) ? (events as PolicyChangedEvent[]) : [];
  } catch {
    return [];
  }
}
