import { withinRevocationLimits, type RevocationLimits } from './enforcement';
import { membershipIn, type Membership, type OrganizationStructure } from './organization';
import { standingOf, targetOf, usesOrganization, type Policy } from './policy';

/** The allowed principal that admits a whole account. */
export function accountPrincipal(accountId: string): string {
  return `arn:aws:iam::${accountId}:root`;
}

/** The account a principal `accountPrincipal` made admits; undefined for any other principal. */
export function accountOfPrincipal(principal: string): string | undefined {
  return /^arn:aws[a-z-]*:iam::(\d{12}):root$/.exec(principal)?.[1];
}

/**
 * The accounts a policy's allow list admits, to be shared the service with: the
 * account entries, and every ACTIVE account below an allowed OU or in an allowed
 * organization (from `structure`). Accounts the policy denies are never in it,
 * nor is '*', nor an account whose place is unknown while an entry by OU or
 * organization could deny it. `unreadable` when the policy has entries by OU or organization and
 * the organization could not be read.
 */
export function admittedAccounts(
  policy: Policy,
  structure: OrganizationStructure | undefined,
  now: Date,
  /** Accounts read one by one, for those the structure does not place (an account entry's account outside the organization). */
  read: ReadonlyMap<string, Membership> = new Map(),
): { accounts: string[] } | { unreadable: true } {
  if (usesOrganization(policy) && !structure) return { unreadable: true };
  const candidates = new Set<string>();
  for (const entry of policy.allow) {
    const target = targetOf(entry);
    if (target.kind === 'account') {
      if (target.id !== '*') candidates.add(target.id);
    } else if (structure) {
      for (const accountId of structure.accounts.keys()) candidates.add(accountId);
    }
  }
  const accounts = [...candidates].filter((accountId) => {
    const standing = standingOf(policy, accountId, now, (structure && membershipIn(structure, accountId)) ?? read.get(accountId));
    return standing.kind === 'allowed' && standing.entry.account !== '*';
  });
  return { accounts: accounts.sort() };
}

/** What to change in a service's allowed principals. */
export interface SharingPlan {
  add: string[];
  remove: string[];
  /** Removals withheld because they exceed the safety limit. */
  skipped: string[];
  /** The principals this tool added and that stay, to be recorded for the next run. */
  ours: string[];
}

/**
 * Brings allowed principals in line with what the policy admits. `add` adds
 * what is missing; `sync` also removes what this tool added earlier (`ours`)
 * and no longer admits, within the revocation safety limit (beyond it, none is
 * removed). A principal someone else added is never removed, and never
 * recorded as ours.
 */
export function planSharing(
  mode: 'add' | 'sync',
  desired: readonly string[],
  current: readonly string[],
  ours: readonly string[],
  limits: RevocationLimits,
): SharingPlan {
  const present = new Set(current);
  const wanted = new Set(desired);
  const add = desired.filter((principal) => !present.has(principal));
  const stillOurs = ours.filter((principal) => present.has(principal));
  const obsolete = mode === 'sync' ? stillOurs.filter((principal) => !wanted.has(principal)) : [];
  const withinLimit = withinRevocationLimits(obsolete.length, stillOurs.length, limits);
  const remove = withinLimit ? obsolete : [];
  const removed = new Set(remove);
  return {
    add,
    remove,
    skipped: withinLimit ? [] : obsolete,
    ours: [...new Set([...stillOurs.filter((principal) => !removed.has(principal)), ...add])].sort(),
  };
}
