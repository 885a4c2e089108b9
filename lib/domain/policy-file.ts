import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../errors';
import { parsePolicy, policyIdSchema, type Policy } from './policy';

// Kept apart from policy.ts so that the Lambda bundles, which never read files,
// do not carry a YAML parser.

/** Reads a policy file: JSON or YAML, an object whose keys are service ids or 'default'. */
export function parsePolicyFile(text: string): Map<string, Policy> {
  let raw: unknown;
  try {
    raw = parseYaml(text); // YAML is a superset of JSON
  } catch (error) {
    throw new ValidationError(`policy file is neither JSON nor YAML: ${(error as Error).message}`, undefined, { cause: error });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ValidationError("policy file must be an object keyed by endpoint service id or 'default'");
  }
  const policies = new Map<string, Policy>();
  for (const [policyId, document] of Object.entries(raw)) {
    const id = policyIdSchema.safeParse(policyId);
    if (!id.success) throw new ValidationError(`policy file key '${policyId}': ${id.error.issues[0]?.message}`);
    try {
      policies.set(policyId, parsePolicy(document));
    } catch (error) {
      if (error instanceof ValidationError) throw new ValidationError(`policy '${policyId}': ${error.message}`, error.details);
      throw error;
    }
  }
  return policies;
}

