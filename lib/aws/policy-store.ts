import type { Policy } from '../domain/policy';

export interface StoredPolicy {
  policyId: string;
  version: number;
  policy: Policy;
  createdAt: string;
  createdBy: string;
}

/** Writes a new version of a policy (placeholder signature; implemented with the core). */
export async function putPolicy(
  _policyId: string,
  _policy: Policy,
  _options: { actor: string; expectedVersion?: number },
): Promise<StoredPolicy> {
  throw new Error('not implemented yet');
}
