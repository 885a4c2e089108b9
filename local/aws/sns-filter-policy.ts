
/**
 * SNS subscription filter policies on message attributes (FilterPolicyScope
 * MessageAttributes), for the operators a subscription here uses: exact
 * strings, `prefix`, `anything-but` and `exists`. A message matches when every
 * key of the policy matches one of its values.
 */

export type FilterPolicy = Record<string, readonly FilterValue[]>;
export type FilterValue = string | { prefix: string } | { 'anything-but': string | string[] } | { exists: boolean };

/** Refuses a policy SNS would refuse, or one using an operator this simulator does not know. */
export function checkFilterPolicy(policy: FilterPolicy): void {
  const keys = Object.keys(policy);
  if (keys.length === 0 || keys.length > 5) throw new Error('InvalidParameter: Filter policy must have 1 to 5 keys');
  for (const [key, values] of Object.entries(policy)) {
    if (!Array.isArray(values) || values.length === 0) throw new Error(`InvalidParameter: Filter policy: "${key}" must be a non-empty array`);
    for (const value of values) {
      if (typeof value === 'string') continue;
      const [operator, ...more] = Object.keys(value);
      if (more.length || !operator || !['prefix', 'anything-but', 'exists'].includes(operator)) {
        throw new Error(`InvalidParameter: Filter policy: unsupported operator in "${key}": ${JSON.stringify(value)}`);
      }
    }
  }
}

/** Whether a message with these attributes passes the policy. */
export function matchesFilterPolicy(policy: FilterPolicy, attributes: Record<string, MessageAttribute>): boolean {
  return Object.entries(policy).every(([key, values]) => {
    const attribute = attributes[key];
    const value = attribute?.DataType.startsWith('String') ? attribute.StringValue : undefined;
    return values.some((condition) => {
      if (typeof condition === 'string') return value === condition;
      if ('exists' in condition) return condition.exists === (attribute !== undefined);
      if (value === undefined) return false;
      if ('prefix' in condition) return value.startsWith(condition.prefix);
      const excluded = condition['anything-but'];
      return !(Array.isArray(excluded) ? excluded : [excluded]).includes(value);
    });
  });
}

/** A message attribute as SNS's Publish takes it, which a filter policy is matched against. */
export interface MessageAttribute {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}
