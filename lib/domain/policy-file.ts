import { isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { ValidationError } from '../errors';
import * as v from '../validation';
import { parsePolicy, policyIdSchema, type Policy } from './policy';

// Kept apart from policy.ts so that the Lambda bundles, which never read files,
// do not carry a YAML parser.

/** Reads a policy file: JSON or YAML, an object whose keys are service ids or 'default'. */
export function parsePolicyFile(text: string): Map<string, Policy> {
  const doc = parseDocument(text); // YAML is a superset of JSON
  const [syntax] = doc.errors;
  if (syntax) throw new ValidationError(`policy file is neither JSON nor YAML: ${syntax.message}`, undefined, { cause: syntax });
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ValidationError("policy file must be an object keyed by endpoint service id or 'default'");
  }
  const unquoted = unquotedAccountIds(doc, text);
  const policies = new Map<string, Policy>();
  for (const [policyId, document] of Object.entries(raw)) {
    const id = v.safeParse(policyIdSchema, policyId);
    if (!id.success) throw new ValidationError(`policy file key '${policyId}': ${id.issues[0].message}`);
    const numbers = unquoted.filter((problem) => problem.path[0] === policyId);
    if (numbers.length) throw new ValidationError(`policy '${policyId}': invalid policy: ${numbers.map((problem) => problem.message).join('; ')}`);
    try {
      policies.set(policyId, parsePolicy(document));
    } catch (error) {
      if (error instanceof ValidationError) throw new ValidationError(`policy '${policyId}': ${error.message}`, error.details);
      throw error;
    }
  }
  return policies;
}

/** An account id written without quotes, which YAML reads as a number. */
export interface UnquotedAccountId {
  /** Where it is, from the top of the document: ['default', 'allow', 0, 'account'] in a file, ['allow', 0, 'account'] in one policy. */
  path: (string | number)[];
  /** What the text says, and the number YAML read. */
  written: string;
  read: string;
  /** Where it starts in the text (an offset), for an editor. */
  offset: number;
  /** "allow[0].account: …", saying to quote it. */
  message: string;
}

/**
 * Every `account:` in an allow or deny list whose value YAML read as a number:
 * 111122223333 unquoted is a number (the schema wants a string), and with a
 * leading zero its digits even change (012345678901 is read as 12345678901).
 * Works on a policy file (keyed by policy id) and on one policy document alike.
 */
export function unquotedAccountIds(doc: Document, text: string): UnquotedAccountId[] {
  const found: UnquotedAccountId[] = [];
  const visit = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (typeof key === 'string') visit(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => visit(item, [...path, index]));
    } else if (isScalar(node) && (typeof node.value === 'number' || typeof node.value === 'bigint')) {
      const [list, index, field] = path.slice(-3);
      if (field !== 'account' || typeof index !== 'number' || (list !== 'allow' && list !== 'deny') || !node.range) return;
      const written = text.slice(node.range[0], node.range[1]);
      const read = String(node.value);
      const where = path.slice(path.length - 3).reduce<string>((t, p) => (typeof p === 'number' ? `${t}[${p}]` : t ? `${t}.${p}` : p), '');
      found.push({
        path,
        written,
        read,
        offset: node.range[0],
        message: `${where}: the account id ${written} is not in quotes, so YAML reads it as the number ${read}: write account: "${written}"`,
      });
    }
  };
  visit(doc.contents, []);
  return found;
}
