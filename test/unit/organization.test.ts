import { describe, expect, it } from 'vitest';
import { revocationFor } from '../../lib/domain/enforcement';
import type { Membership } from '../../lib/domain/organization';
import { evaluatePolicy, parsePolicy, type Policy } from '../../lib/domain/policy';
import { ValidationError } from '../../lib/errors';

const now = new Date('2026-11-23T12:00:00Z');
const readAt = '2026-11-23T11:55:00.000Z';
const ORG = 'o-a1b2c3d4e5';
const PROD = 'ou-ab12-cdef3456';
const WORKLOADS = 'ou-ab12-11112222';
const SANDBOXES = 'ou-ab12-99998888';
const ACCOUNT = '111122223333';

const root = { id: 'r-ab12', name: 'Root' };
const workloads = { id: WORKLOADS, name: 'Workloads' };
const prod = { id: PROD, name: 'Prod' };
const sandboxes = { id: SANDBOXES, name: 'Sandboxes' };

const member = (path = [root, workloads, prod], status: 'ACTIVE' | 'SUSPENDED' = 'ACTIVE', accountId = ACCOUNT): Membership => ({
  kind: 'member',
  accountId,
  organizationId: ORG,
  status,
  path,
  readAt,
});
const outside: Membership = { kind: 'outside', accountId: ACCOUNT, organizationId: ORG, readAt };
const unreadable: Membership = { kind: 'unreadable', accountId: ACCOUNT, error: 'AccessDeniedException' };

const policy = (document: Record<string, unknown>): Policy => parsePolicy({ mode: 'auto', ...document });
const decide = (p: Policy, membership?: Membership, region = 'us-east-1') =>
  evaluatePolicy(p, { accountId: ACCOUNT, region }, { now, admittedEndpointsOfAccount: 0, membership });

describe('policy entries by OU and organization', () => {
  it('accepts an ACTIVE account below an allowed OU, quoting the entry, the path, the status and when it was read', () => {
    const result = decide(policy({ allow: [{ organizationalUnit: PROD, label: 'prod' }] }), member());
    expect(result).toMatchObject({ outcome: 'accept', act: true, rule: 'allow:prod' });
    expect(result.reason).toBe(`account ${ACCOUNT} is in OU ${PROD} (prod): Root › Workloads › Prod, ACTIVE, read at ${readAt}`);
    expect(result.organization).toEqual({
      organizationId: ORG,
      path: 'Root › Workloads › Prod',
      pathIds: ['r-ab12', WORKLOADS, PROD],
      status: 'ACTIVE',
      member: true,
      readAt,
    });
  });

  it('matches an account anywhere below the OU, not only its direct children', () => {
    const result = decide(policy({ allow: [{ organizationalUnit: WORKLOADS, label: 'workloads' }] }), member());
    expect(result).toMatchObject({ outcome: 'accept', rule: 'allow:workloads' });
  });

  it('prefers the OU entry nearest the account over one higher up and over the organization', () => {
    const p = policy({
      allow: [
        { organization: ORG, label: 'our-org' },
        { organizationalUnit: WORKLOADS, label: 'workloads' },
        { organizationalUnit: PROD, label: 'prod' },
      ],
    });
    expect(decide(p, member()).rule).toBe('allow:prod');
    expect(decide(p, member([root, workloads])).rule).toBe('allow:workloads');
    expect(decide(p, member([root])).rule).toBe('allow:our-org');
  });

  it('prefers an entry for the account itself over an OU entry, and an organization entry over *', () => {
    const p = policy({
      allow: [{ account: '*', label: 'anyone' }, { organization: ORG, label: 'our-org' }, { account: ACCOUNT, label: 'named' }],
    });
    expect(decide(p, member()).rule).toBe('allow:named');
    expect(decide(policy({ allow: [{ account: '*', label: 'anyone' }, { organization: ORG, label: 'our-org' }] }), member()).rule).toBe(
      'allow:our-org',
    );
  });

  it('rejects an account below a denied OU even when an entry allows the account itself', () => {
    const p = policy({
      allow: [{ account: ACCOUNT, label: 'named' }],
      deny: [{ organizationalUnit: SANDBOXES, label: 'sandboxes' }],
    });
    const result = decide(p, member([root, sandboxes]));
    expect(result).toMatchObject({ outcome: 'reject', rule: 'deny:sandboxes' });
    expect(result.reason).toContain(`is in OU ${SANDBOXES} (sandboxes): Root › Sandboxes, ACTIVE`);
  });

  it('denies by OU whatever the account status, and before the region rule', () => {
    const p = policy({ deny: [{ organizationalUnit: SANDBOXES, label: 'sandboxes' }], regions: ['eu-west-1'] });
    expect(decide(p, member([root, sandboxes], 'SUSPENDED'), 'us-east-1')).toMatchObject({ outcome: 'reject', rule: 'deny:sandboxes' });
  });

  it('does not let a suspended account match an allow entry by OU or organization', () => {
    const p = policy({ allow: [{ organizationalUnit: PROD, label: 'prod' }, { organization: ORG }] });
    const result = decide(p, member(undefined, 'SUSPENDED'));
    expect(result).toMatchObject({ outcome: 'hold', act: false, rule: 'onUnmatched:hold' });
    expect(result.reason).toContain('SUSPENDED');
    expect(result.reason).toContain('only ACTIVE accounts match');
    expect(result.organization?.status).toBe('SUSPENDED');
  });

  it('lets * admit a suspended account: only entries by OU or organization look at the status', () => {
    const p = policy({ allow: [{ organizationalUnit: PROD, label: 'prod' }, { account: '*' }] });
    expect(decide(p, member(undefined, 'SUSPENDED'))).toMatchObject({ outcome: 'accept', rule: 'allow:*' });
  });

  it('matches an account outside the organization with neither allow nor deny entries by OU or organization', () => {
    const p = policy({
      allow: [{ organization: ORG, label: 'our-org' }],
      deny: [{ organizationalUnit: SANDBOXES, label: 'sandboxes' }],
      onUnmatched: 'reject',
    });
    const result = decide(p, outside);
    expect(result).toMatchObject({ outcome: 'reject', rule: 'onUnmatched:reject' });
    expect(result.reason).toContain(`is not an account of organization ${ORG}`);
  });

  it('holds, saying why, when the organization could not be read and an entry by OU could deny', () => {
    const p = policy({
      allow: [{ account: ACCOUNT, label: 'named' }],
      deny: [{ organizationalUnit: SANDBOXES, label: 'sandboxes' }],
      onUnmatched: 'reject',
    });
    const result = decide(p, unreadable);
    expect(result).toMatchObject({ outcome: 'hold', act: false, rule: 'organization-unreadable' });
    expect(result.reason).toBe('organization membership could not be read: AccessDeniedException');
  });

  it('holds rather than rejecting when only an allow entry by OU is in play and the organization is unreadable', () => {
    const result = decide(policy({ allow: [{ organizationalUnit: PROD }], onUnmatched: 'reject' }), unreadable);
    expect(result).toMatchObject({ outcome: 'hold', rule: 'organization-unreadable' });
  });

  it('holds when the caller did not read the membership at all', () => {
    expect(decide(policy({ allow: [{ organizationalUnit: PROD }] }))).toMatchObject({ outcome: 'hold', rule: 'organization-unreadable' });
  });

  it('still rejects an account on the deny list when the organization is unreadable', () => {
    const p = policy({ deny: [{ account: ACCOUNT, label: 'gone' }, { organizationalUnit: SANDBOXES }] });
    expect(decide(p, unreadable)).toMatchObject({ outcome: 'reject', rule: 'deny:gone' });
  });

  it('decides a policy with account entries only without any membership, as before', () => {
    const result = decide(policy({ allow: [{ account: ACCOUNT, label: 'named' }] }));
    expect(result).toEqual({ outcome: 'accept', act: true, rule: 'allow:named', reason: `account ${ACCOUNT} matched allow entry 'named'` });
  });

  it('does not match an expired OU entry', () => {
    const p = policy({ allow: [{ organizationalUnit: PROD, label: 'prod', expiresAt: '2026-01-01T00:00:00Z' }] });
    const result = decide(p, member());
    expect(result.outcome).toBe('hold');
    expect(result.reason).toContain("allow entry 'prod'");
    expect(result.reason).toContain('expired at 2026-01-01T00:00:00Z');
  });
});

describe('the policy schema for entries by OU and organization', () => {
  it.each([
    [{ allow: [{ organizationalUnit: PROD, organization: ORG }] }, /allow\[0\]: names organizationalUnit and organization/],
    [{ allow: [{ label: 'nothing' }] }, /allow\[0\]: needs one of account, organizationalUnit or organization/],
    [{ deny: [{ account: ACCOUNT, organizationalUnit: PROD }] }, /deny\[0\]: names account and organizationalUnit/],
    [{ allow: [{ organizationalUnit: 'ou-prod' }] }, /allow\[0\]\.organizationalUnit: must be an organizational unit id/],
    [{ deny: [{ organization: 'o-short' }] }, /deny\[0\]\.organization: must be an organization id/],
    [{ deny: [{ account: '*' }] }, /deny\[0\]\.account: must be a 12-digit AWS account id/],
    [{ sharing: 'always' }, /sharing: must be off, add or sync/],
  ])('refuses %j', (document, message) => {
    expect(() => parsePolicy(document)).toThrow(ValidationError);
    expect(() => parsePolicy(document)).toThrow(message);
  });

  it('reads the example of the issue back exactly as written', () => {
    const document = {
      allow: [
        { organizationalUnit: PROD, label: 'prod' },
        { organization: ORG, label: 'our-org' },
        { account: ACCOUNT },
      ],
      deny: [{ organizationalUnit: SANDBOXES, label: 'sandboxes' }],
      sharing: 'sync',
    };
    expect(parsePolicy(document)).toMatchObject(document);
  });
});

describe('enforcement when accounts leave', () => {
  const enforcing = policy({ allow: [{ organizationalUnit: PROD, label: 'prod' }, { organization: ORG, label: 'our-org' }], enforce: true });
  const prodOnly = policy({ allow: [{ organizationalUnit: PROD, label: 'prod' }], enforce: true });
  const admittedBy = (rule: string) => ({
    decision: { outcome: 'accept' as const, acted: true, rule, reason: 'x', decidedBy: 'policy', decidedAt: '2026-01-01T00:00:00Z' },
  });

  it('revokes a connection admitted by an OU entry once the account moved out of that OU', () => {
    const intent = revocationFor(prodOnly, admittedBy('allow:prod'), ACCOUNT, now, member([root, sandboxes]));
    expect(intent).toMatchObject({ outcome: 'reject', rule: 'enforce:left-ou:prod', decidedBy: 'policy' });
    expect(intent?.reason).toContain(`is no longer below OU ${PROD} ('prod'): Root › Sandboxes, ACTIVE`);
  });

  it('revokes once the account left the organization', () => {
    expect(revocationFor(enforcing, admittedBy('allow:our-org'), ACCOUNT, now, outside)?.rule).toBe('enforce:left-organization:our-org');
  });

  it('revokes once the account is suspended', () => {
    expect(revocationFor(prodOnly, admittedBy('allow:prod'), ACCOUNT, now, member(undefined, 'SUSPENDED'))?.rule).toBe('enforce:suspended:prod');
  });

  it('keeps a connection whose account moved to another OU the organization entry still admits', () => {
    expect(revocationFor(enforcing, admittedBy('allow:prod'), ACCOUNT, now, member([root, sandboxes]))).toBeUndefined();
  });

  it('revokes nothing when the organization could not be read', () => {
    expect(revocationFor(prodOnly, admittedBy('allow:prod'), ACCOUNT, now, unreadable)).toBeUndefined();
    expect(revocationFor(prodOnly, admittedBy('allow:prod'), ACCOUNT, now, undefined)).toBeUndefined();
  });

  it('keeps what an approver accepted by hand, even outside the OU', () => {
    const byHand = { decision: { ...admittedBy('approved').decision, decidedBy: 'arn:aws:iam::000000000000:role/approver' } };
    expect(revocationFor(prodOnly, byHand, ACCOUNT, now, member([root, sandboxes]))).toBeUndefined();
  });

  it('revokes every connection of an account below a denied OU, whoever admitted it', () => {
    const p = policy({ deny: [{ organizationalUnit: SANDBOXES, label: 'sandboxes' }], enforce: true });
    const byHand = { decision: { ...admittedBy('approved').decision, decidedBy: 'arn:aws:iam::000000000000:role/approver' } };
    expect(revocationFor(p, byHand, ACCOUNT, now, member([root, sandboxes], 'SUSPENDED'))?.rule).toBe('enforce:deny:sandboxes');
  });
});
