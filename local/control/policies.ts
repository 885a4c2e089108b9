import { readFile } from 'node:fs/promises';
import type { Policy } from '../../lib/domain/policy';
import { parsePolicyFile } from '../../lib/domain/policy-file';

/** Writes one policy version, as lib/aws/policy-store.ts putPolicy does. */
export type PutPolicy = (policyId: string, policy: Policy, options: { actor: string }) => Promise<unknown>;

const ACTOR = 'local-policy-file';

/** Reads and validates a policy file; throws ValidationError naming what is wrong. */
export async function readPolicyFile(path: string): Promise<Map<string, Policy>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read policy file ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return parsePolicyFile(text);
}

/** Reads the policy file and stores each policy in it as a new version. */
export async function loadPolicyFile(path: string, putPolicy: PutPolicy): Promise<string[]> {
  const policies = await readPolicyFile(path);
  for (const [policyId, policy] of policies) {
    await putPolicy(policyId, policy, { actor: ACTOR });
  }
  return [...policies.keys()];
}
