import fc from 'fast-check';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../lib/domain/policy';
import { parsePolicyFile, unquotedAccountIds } from '../../lib/domain/policy-file';
import { closest } from '../../lib/domain/suggest';
import { isSafeText } from '../../lib/domain/text';
import { reasonSchema } from '../../lib/http/request';
import * as v from '../../lib/validation';

// What a person who got a policy wrong reads: the field, what was wrong, and what to write instead.

function problemOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected it to be refused');
}

describe('policy error messages', () => {
  it('say "did you mean" for a mistyped field, at the top and in an entry', () => {
    expect(problemOf(() => parsePolicy({ onUnmatch: 'hold' }))).toBe("invalid policy: unknown field 'onUnmatch' (did you mean 'onUnmatched'?)");
    expect(problemOf(() => parsePolicy({ allow: [{ acount: '111122223333' }] }))).toContain("unknown field 'acount' (did you mean 'account'?) in allow[0]");
    expect(problemOf(() => parsePolicy({ deny: [{ account: '111122223333', expiresAt: '2030-01-01T00:00:00Z' }] }))).toContain(
      "unknown field 'expiresAt' in deny[0] (the fields are account, organizationalUnit, organization, label)",
    );
  });

  it('say an account id was read as a number, and to quote it', () => {
    expect(problemOf(() => parsePolicy({ allow: [{ account: 111122223333 }] }))).toBe(
      "invalid policy: allow[0].account: must be a 12-digit AWS account id or '*', written as a string in quotes: it was read as the number 111122223333",
    );
    expect(problemOf(() => parsePolicy({ deny: [{ account: 444455556666 }] }))).toContain('deny[0].account: must be a 12-digit AWS account id, written as a string in quotes');
  });

  it('in a YAML file, show an unquoted account id as written and as YAML read it, changed digits included', () => {
    const problem = problemOf(() => parsePolicyFile('default:\n  allow:\n    - account: 012345678901\n      label: acme\n  deny:\n    - account: 444455556666\n'));

    expect(problem).toBe(
      "policy 'default': invalid policy: allow[0].account: the account id 012345678901 is not in quotes, so YAML reads it as the number 12345678901: " +
        'write account: "012345678901"; deny[0].account: the account id 444455556666 is not in quotes, so YAML reads it as the number 444455556666: write account: "444455556666"',
    );
  });

  it('find unquoted account ids in one policy document too, with where they start', () => {
    const text = 'allow:\n  - account: 111122223333\n  - account: "210987654321"\n';

    const found = unquotedAccountIds(parseDocument(text), text);

    expect(found).toEqual([expect.objectContaining({ path: ['allow', 0, 'account'], written: '111122223333', offset: text.indexOf('1111') })]);
  });

  it('name what a policy file key must be', () => {
    expect(problemOf(() => parsePolicyFile('vpce-svc-XYZ:\n  mode: auto\n'))).toBe(
      "policy file key 'vpce-svc-XYZ': must be an endpoint service id such as vpce-svc-0123456789abcdef0, 'default', or a name of at most 64 lowercase letters, digits and hyphens (not starting vpce-)",
    );
  });
});

describe('free text people write', () => {
  it('refuses in labels what it refuses in reasons (controls, bidi controls, lone surrogates), and line breaks too', () => {
    for (const label of ['a\u001b[2Kb', 'a\u202Eb', 'a\u2066b', 'a\uD800b', 'a\u0085b', 'two\nlines', 'tab\there']) {
      expect(problemOf(() => parsePolicy({ allow: [{ account: '111122223333', label }] }))).toContain('allow[0].label: must be one line without control characters');
    }
    expect(parsePolicy({ allow: [{ account: '111122223333', label: 'équipe › prod 🚀' }] }).allow[0]?.label).toBe('équipe › prod 🚀');
  });

  it('accepts in a label exactly the one-line text a reason accepts', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), (text) => {
        const oneLine = !/[\t\n]/.test(text);
        const asLabel = (() => {
          try {
            parsePolicy({ allow: [{ account: '111122223333', label: text }] });
            return true;
          } catch {
            return false;
          }
        })();
        const asReason = v.safeParse(reasonSchema, `x${text}x`).success;
        return asLabel === (oneLine && asReason) && asReason === isSafeText(text);
      }),
    );
  }, 30_000); // fast-check builds its full-Unicode string tables once per file: seconds on a busy machine
});

describe('did you mean', () => {
  it('suggests the nearest name within a third of its length, and nothing for a stranger', () => {
    expect(closest('onUnmatch', ['onUnmatched', 'onPendingTimeout'])).toBe('onUnmatched');
    expect(closest('maxEndpointPerAccount', ['maxEndpointsPerAccount'])).toBe('maxEndpointsPerAccount');
    expect(closest('alow', ['allow', 'deny'])).toBe('allow');
    expect(closest('reigons', ['regions'])).toBe('regions');
    expect(closest('colour', ['allow', 'deny', 'mode'])).toBeUndefined();
  });
});
