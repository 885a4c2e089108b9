import { describe, expect, it } from 'vitest';
import { evaluatePolicy, parsePolicy, type Policy } from '../../lib/domain/policy';
import { parsePolicyFile } from '../../lib/domain/policy-file';
import { ValidationError } from '../../lib/errors';

const now = new Date('2026-11-23T00:00:00Z');
const fresh = { now, admittedEndpointsOfAccount: 0 };

const example = parsePolicy({
  mode: 'auto',
  allow: [
    { account: '111122223333', label: 'acme-prod', expiresAt: '2027-06-30T00:00:00Z' },
    { account: '210987654321', label: 'acme-staging' },
    { account: '777788889999', label: 'old-partner', expiresAt: '2026-01-01T00:00:00Z' },
  ],
  deny: [{ account: '444455556666', label: 'offboarded' }],
  regions: ['us-east-1', 'eu-west-1'],
  maxEndpointsPerAccount: 5,
  onUnmatched: 'hold',
});

const request = (accountId: string, region = 'us-east-1') => ({ accountId, region });

describe('evaluatePolicy', () => {
  it('accepts an allowed account and says which entry matched', () => {
    const result = evaluatePolicy(example, request('111122223333'), fresh);
    expect(result).toEqual({
      outcome: 'accept',
      act: true,
      rule: 'allow:acme-prod',
      reason: "account 111122223333 matched allow entry 'acme-prod'",
    });
  });

  it('rejects a denied account even when it is also allowed', () => {
    const policy: Policy = { ...example, allow: [...example.allow, { account: '444455556666', label: 'also-allowed' }] };
    const result = evaluatePolicy(policy, request('444455556666'), fresh);
    expect(result.outcome).toBe('reject');
    expect(result.rule).toBe('deny:offboarded');
    expect(result.reason).toBe("account 444455556666 matched deny entry 'offboarded'");
  });

  it('holds an unknown account when onUnmatched is hold', () => {
    const result = evaluatePolicy(example, request('999999999999'), fresh);
    expect(result).toMatchObject({ outcome: 'hold', act: false, rule: 'onUnmatched:hold' });
    expect(result.reason).toContain('account 999999999999 is on neither the allow nor the deny list');
  });

  it('rejects an unknown account when onUnmatched is reject', () => {
    const result = evaluatePolicy({ ...example, onUnmatched: 'reject' }, request('999999999999'), fresh);
    expect(result).toMatchObject({ outcome: 'reject', act: true, rule: 'onUnmatched:reject' });
  });

  it('no longer matches an allow entry past its expiresAt', () => {
    const result = evaluatePolicy(example, request('777788889999'), fresh);
    expect(result.outcome).toBe('hold');
    expect(result.reason).toContain("allow entry 'old-partner' for account 777788889999 expired at 2026-01-01T00:00:00Z");
  });

  it('treats a consumer from a region outside the list as unmatched', () => {
    const result = evaluatePolicy(example, request('111122223333', 'ap-south-1'), fresh);
    expect(result.outcome).toBe('hold');
    expect(result.reason).toContain('region ap-south-1 is not one of the allowed regions (us-east-1, eu-west-1)');
  });

  it('treats an account at maxEndpointsPerAccount as unmatched', () => {
    const result = evaluatePolicy(example, request('111122223333'), { now, admittedEndpointsOfAccount: 5 });
    expect(result.outcome).toBe('hold');
    expect(result.reason).toContain('already has 5 endpoint(s) admitted, the most allowed is 5');
    expect(evaluatePolicy(example, request('111122223333'), { now, admittedEndpointsOfAccount: 4 }).outcome).toBe('accept');
  });

  it("lets '*' in allow admit any account, but prefers the account's own entry", () => {
    const policy = parsePolicy({ allow: [{ account: '*', label: 'everyone' }, { account: '111122223333', label: 'acme' }] });
    expect(evaluatePolicy(policy, request('123412341234'), fresh).rule).toBe('allow:everyone');
    expect(evaluatePolicy(policy, request('111122223333'), fresh).rule).toBe('allow:acme');
  });

  it('holds everything without acting in manual mode', () => {
    const result = evaluatePolicy({ ...example, mode: 'manual' }, request('111122223333'), fresh);
    expect(result).toMatchObject({ outcome: 'hold', act: false, rule: 'mode:manual' });
    expect(result.reason).toContain("matched allow entry 'acme-prod'");
  });

  it('records what auto would do without acting in observe mode', () => {
    const result = evaluatePolicy({ ...example, mode: 'observe' }, request('444455556666'), fresh);
    expect(result).toMatchObject({ outcome: 'reject', act: false, rule: 'deny:offboarded' });
    expect(result.reason).toMatch(/^observe mode, nothing done: would reject/);
  });

  it('never accepts when there is no policy at all', () => {
    const result = evaluatePolicy(undefined, request('111122223333'), fresh);
    expect(result).toMatchObject({ outcome: 'hold', act: false, rule: 'no-policy' });
  });
});

describe('parsePolicy', () => {
  const refusal = (document: unknown) => {
    try {
      parsePolicy(document);
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      return (error as Error).message;
    }
    throw new Error('expected the policy to be refused');
  };

  it('fills defaults: auto mode, empty lists, unmatched requests held', () => {
    expect(parsePolicy({})).toEqual({ mode: 'auto', allow: [], deny: [], onUnmatched: 'hold' });
  });

  it('refuses unknown fields, naming them', () => {
    expect(refusal({ mode: 'auto', alow: [] })).toContain("unknown field 'alow'");
    expect(refusal({ allow: [{ account: '111122223333', note: 'x' }] })).toContain("unknown field 'note' in allow[0]");
  });

  it('refuses bad account ids, naming the field', () => {
    expect(refusal({ allow: [{ account: '1234' }] })).toContain('allow[0].account');
    expect(refusal({ deny: [{ account: '*' }] })).toContain('deny[0].account: must be a 12-digit AWS account id');
  });

  it('refuses bad values, naming the field', () => {
    expect(refusal({ mode: 'sometimes' })).toContain('mode: must be auto, manual or observe');
    expect(refusal({ onUnmatched: 'accept' })).toContain('onUnmatched: must be hold or reject');
    expect(refusal({ maxEndpointsPerAccount: 0 })).toContain('maxEndpointsPerAccount');
    expect(refusal({ regions: ['mars-1'] })).toContain('regions[0]');
    expect(refusal({ allow: [{ account: '111122223333', expiresAt: 'next tuesday' }] })).toContain('allow[0].expiresAt');
  });
});

describe('parsePolicyFile', () => {
  it('reads JSON keyed by service id and default', () => {
    const policies = parsePolicyFile(
      JSON.stringify({ default: { mode: 'manual' }, 'vpce-svc-0a1b2c3d4e5f60718': { allow: [{ account: '111122223333' }] } }),
    );
    expect([...policies.keys()]).toEqual(['default', 'vpce-svc-0a1b2c3d4e5f60718']);
    expect(policies.get('default')?.mode).toBe('manual');
  });

  it('reads the same document in YAML', () => {
    const policies = parsePolicyFile('default:\n  mode: auto\n  allow:\n    - account: "111122223333"\n      label: acme\n');
    expect(policies.get('default')?.allow).toEqual([{ account: '111122223333', label: 'acme' }]);
  });

  it('refuses a key that is neither a service id, default nor a policy name', () => {
    expect(() => parsePolicyFile('{"My_Service": {}}')).toThrow(/policy file key 'My_Service'/);
    expect(() => parsePolicyFile(`{"${'a'.repeat(65)}": {}}`)).toThrow(/at most 64/);
    expect(() => parsePolicyFile('{"vpce-web": {}}')).toThrow(/not starting vpce-/);
  });

  it('takes named policies beside the default and service ids', () => {
    const policies = parsePolicyFile('{"default": {"mode": "manual"}, "web-tier": {"mode": "auto", "allow": [{"account": "111122223333"}]}}');
    expect([...policies.keys()]).toEqual(['default', 'web-tier']);
    expect(policies.get('web-tier')?.allow).toEqual([{ account: '111122223333' }]);
  });

  it('names the policy whose document is bad', () => {
    expect(() => parsePolicyFile('{"default": {"mode": "yes"}}')).toThrow(/policy 'default': invalid policy: mode/);
  });
});
