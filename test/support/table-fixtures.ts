// The one place tests put something into the table that the gateways would not write: a policy
// version an earlier release stored and this one no longer validates. Everything else a test seeds
// goes through the gateways (putPolicy, putConnection).
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { keys } from '../../lib/aws/table';

/**
 * Stores a policy version with `document` as its text, as an earlier release might have written it,
 * bypassing today's validation. By default in the unit tests' table; the e2e tests hand in the local
 * stack's client and table.
 */
export async function storeOldPolicyVersion(
  policyId: string,
  version: number,
  document: string,
  table?: { db: DynamoDBDocumentClient; tableName: string },
): Promise<void> {
  // The functions' client only when asked for: an e2e process has no function configuration to load it with.
  const { db, tableName } = table ?? { db: (await import('../../lib/aws/clients')).documentClient, tableName: String(process.env.TABLE_NAME) };
  await db.send(
    new PutCommand({
      TableName: tableName,
      Item: { ...keys.policyVersion(policyId, version), type: 'policy', policyId, version, document, createdAt: new Date().toISOString(), createdBy: 'old-release' },
    }),
  );
}
