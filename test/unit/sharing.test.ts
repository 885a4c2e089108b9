import { describe, expect, it } from 'vitest';
import type { OrganizationStructure } from '../../lib/domain/organization';
import { parsePolicy } from '../../lib/domain/policy';
import { accountPrincipal, admittedAccounts, planSharing } from '../../lib/domain/sharing';

const now = new Date('2026-11-23T12:00:00Z');
const PROD = 'ou-ab12-cdef3456';
const SANDBOXES = 'ou-ab12-99998888';
const structure: OrganizationStructure = {
  organizationId: 'o-a1b2c3d4e5',
  root: { id: 'r-ab12', name: 'Root' },
  units: new Map([
    [PROD, { id: PROD, name: 'Prod', parentId: 'r-ab12' }],
    [SANDBOXES, { id: SANDBOXES, name: 'Sandboxes', parentId: PROD }],
  ]),
  accounts: new Map([
    ['111111111111', { status: 'ACTIVE', parentId: PROD }],
    ['222222222222', { status: 'SUSPENDED', parentId: PROD }],
    ['333333333333', { status: 'ACTIVE', parentId: SANDBOXES }],
    ['444444444444', { status: 'ACTIVE', parentId: 'r-ab12' }],
  ]),
  readAt: '2026-11-23T11:59:00.000Z',
};
const limits = { maxRevocationsPerRun: 10, maxRevocationPercent: 50 };
const arn = accountPrincipal;

describe('the accounts a policy shares the service with', () => {
  it('lists the account entries and every ACTIVE account below an allowed OU, never a denied one, never *', () => {
    const policy = parsePolicy({
      allow: [{ organizationalUnit: PROD }, { account: '555555555555' }, { account: '*' }],
      deny: [{ organizationalUnit: SANDBOXES }],
    });
    const outside = new Map([['555555555555', { kind: 'outside' as const, accountId: '555555555555', organizationId: 'o-a1b2c3d4e5', readAt: now.toISOString() }]]);
    expect(admittedAccounts(policy, structure, now, outside)).toEqual({ accounts: ['111111111111', '555555555555'] });
  });

  it('never shares with an account entry whose account the structure does not place and nobody read: it may be below a denied OU', () => {
    const policy = parsePolicy({ allow: [{ account: '555555555555' }], deny: [{ organizationalUnit: SANDBOXES }] });
    expect(admittedAccounts(policy, structure, now)).toEqual({ accounts: [] });
  });

  it('lists every ACTIVE account of an allowed organization', () => {
    const policy = parsePolicy({ allow: [{ organization: 'o-a1b2c3d4e5' }] });
    expect(admittedAccounts(policy, structure, now)).toEqual({ accounts: ['111111111111', '333333333333', '444444444444'] });
  });

  it('shares nothing when the organization could not be read and the policy names an OU', () => {
    expect(admittedAccounts(parsePolicy({ allow: [{ organizationalUnit: PROD }] }), undefined, now)).toEqual({ unreadable: true });
  });
});

describe('planning changes to allowed principals', () => {
  it('adds what is missing and records it as its own', () => {
    const plan = planSharing('add', [arn('111111111111')], ['*'], [], limits);
    expect(plan).toEqual({ add: [arn('111111111111')], remove: [], skipped: [], ours: [arn('111111111111')] });
  });

  it('never records or removes a principal someone else added, even when the policy admits it no longer', () => {
    const foreign = arn('999999999999');
    const plan = planSharing('sync', [arn('111111111111')], [foreign, arn('111111111111')], [], limits);
    expect(plan).toEqual({ add: [], remove: [], skipped: [], ours: [] });
  });

  it('with sync, removes what it added and no longer admits; with add, keeps it', () => {
    const current = [arn('111111111111'), arn('222222222222')];
    const ours = [arn('111111111111'), arn('222222222222')];
    expect(planSharing('sync', [arn('111111111111')], current, ours, limits)).toMatchObject({ remove: [arn('222222222222')], ours: [arn('111111111111')] });
    expect(planSharing('add', [arn('111111111111')], current, ours, limits)).toMatchObject({ remove: [], ours });
  });

  it('withholds every removal beyond the safety limit', () => {
    const ours = ['1', '2', '3', '4'].map((n) => arn(n.repeat(12)));
    const plan = planSharing('sync', [], ours, ours, limits);
    expect(plan).toEqual({ add: [], remove: [], skipped: ours, ours });
  });

  it('forgets a principal it added that someone else has since removed', () => {
    expect(planSharing('sync', [], [], [arn('111111111111')], limits).ours).toEqual([]);
  });
});
