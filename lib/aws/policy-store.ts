import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_POLICY_ID, parsePolicy, type Policy } from '../domain/policy';
import { ConflictError } from '../errors';
import { config } from '../config';
import { documentClient } from './clients';
import { queryAllItems } from './query';
import { keys } from './table';

export interface StoredPolicy {
  policyId: string;
  version: number;
  policy: Policy;
  createdAt: string;
  createdBy: string;
}

/**
 * The newest version of a policy, or undefined if there is none. A stored
 * document that no longer validates throws: a policy that cannot be read must
 * never be treated as "no restrictions".
 */
export async function getCurrentPolicy(
  policyId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<StoredPolicy | undefined> {
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
  return item ? fromItem(item) : undefined;
}

/** The policy that governs a service: its own, else the default, else undefined. */
export async function resolvePolicy(
  serviceId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<StoredPolicy | undefined> {
  return (await getCurrentPolicy(serviceId, db)) ?? (await getCurrentPolicy(DEFAULT_POLICY_ID, db));
}

/**
 * Writes the next version of a policy; earlier versions are kept. With
 * `expectedVersion`, refuses (ConflictError) unless that is still the newest.
 */
export async function putPolicy(
  policyId: string,
  policy: Policy,
  options: { actor: string; expectedVersion?: number },
  db: DynamoDBDocumentClient = documentClient,
): Promise<StoredPolicy> {
  const current = await getCurrentPolicy(policyId, db);
  if (options.expectedVersion !== undefined && options.expectedVersion !== (current?.version ?? 0)) {
    throw new ConflictError(
      `policy ${policyId} is at version ${current?.version ?? 0}, not ${options.expectedVersion}`,
    );
  }
  const stored: StoredPolicy = {
    policyId,
    version: (current?.version ?? 0) + 1,
    policy,
    createdAt: new Date().toISOString(),
    createdBy: options.actor,
  };
  try {
    await db.send(
      new PutCommand({
        TableName: config().TABLE_NAME,
        Item: toItem(stored),
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

/** Every version of a policy, newest first. */
export async function listPolicyVersions(
  policyId: string,
  db: DynamoDBDocumentClient = documentClient,
): Promise<StoredPolicy[]> {
  const versions: StoredPolicy[] = [];
  const items = queryAllItems(db, {
    TableName: config().TABLE_NAME,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': keys.policyVersions(policyId).pk },
    ScanIndexForward: false,
  });
  for await (const item of items) versions.push(fromItem(item));
  return versions;
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

function fromItem(item: Record<string, unknown>): StoredPolicy {
  const policyId = String(item.policyId);
  return {
    policyId,
    version: Number(item.version),
    // Throws ValidationError on a document that no longer validates (fail closed).
    policy: parsePolicy(JSON.parse(String(item.document))),
    createdAt: String(item.createdAt),
    createdBy: String(item.createdBy),
  };
}
