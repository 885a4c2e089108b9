import type { Membership, OrganizationNode, OrganizationStructure } from './domain/organization';
import { membershipIn } from './domain/organization';
import { getCachedMemberships, putCachedMemberships } from './aws/organization-store';
import { readMembership, readStructure } from './aws/organizations-gateway';
import { config } from './config';
import { logger } from './logger';

type Known = Exclude<Membership, { kind: 'unreadable' }>;

/**
 * Memberships this container read or found in the table, until they are older
 * than the cache TTL; and the OUs it described, so that accounts of one OU
 * share those calls. Organizations allows few requests per second: a burst of
 * notifications must not turn into a burst of calls.
 */
const remembered = new Map<string, Known>();
let units = new Map<string, OrganizationNode & { parentId: string }>();
let unitsReadAt = 0;
const reading = new Map<string, Promise<Membership>>();

/**
 * The memberships of accounts, by account id: from this container's memory,
 * else the table's cache, else Organizations (cached in both afterwards). An
 * account whose membership could not be read is `unreadable`, with the error's
 * name; once one read fails, the others of the same call are not attempted.
 */
export async function membershipsOf(accountIds: readonly string[]): Promise<Map<string, Membership>> {
  const result = new Map<string, Membership>();
  const wanted = [...new Set(accountIds)];
  const missing = wanted.filter((accountId) => {
    const known = remembered.get(accountId);
    if (known && fresh(known)) result.set(accountId, known);
    return !result.has(accountId);
  });
  if (!missing.length) return result;
  const cached = await getCachedMemberships(missing);
  const unread: string[] = [];
  for (const accountId of missing) {
    const membership = cached.get(accountId);
    if (membership && fresh(membership)) {
      remember(membership);
      result.set(accountId, membership);
    } else unread.push(accountId);
  }
  const read: Known[] = [];
  let failure: string | undefined;
  for (const accountId of unread) {
    if (failure) {
      result.set(accountId, { kind: 'unreadable', accountId, error: failure });
      continue;
    }
    const membership = await readOnce(accountId);
    result.set(accountId, membership);
    if (membership.kind === 'unreadable') failure = membership.error;
    else read.push(membership);
  }
  if (read.length) await putCachedMemberships(read);
  return result;
}

/** Reads one account from Organizations; copies of the same read made at the same time share it. */
function readOnce(accountId: string): Promise<Membership> {
  let pending = reading.get(accountId);
  if (!pending) {
    if (Date.now() - unitsReadAt > config().ORGANIZATION_CACHE_TTL * 1000) {
      units = new Map();
      unitsReadAt = Date.now();
    }
    pending = readMembership(accountId, units)
      .then((membership) => {
        if (membership.kind !== 'unreadable') remember(membership);
        return membership;
      })
      .catch((error: unknown): Membership => {
        const name = error instanceof Error ? error.name : 'Error';
        logger.warn('could not read an account from Organizations', { accountId, error });
        return { kind: 'unreadable', accountId, error: name };
      })
      .finally(() => reading.delete(accountId));
    reading.set(accountId, pending);
  }
  return pending;
}

/**
 * Reads the whole organization fresh (the reconciler, once per run) and caches
 * the membership of every account in it, and of `alsoAccounts` (outside, when
 * the structure lacks them), so that notifications until the next run use it.
 * Returns the structure, or the name of the error that kept it from being read.
 */
export async function refreshOrganization(alsoAccounts: readonly string[]): Promise<{ structure: OrganizationStructure } | { error: string }> {
  let structure: OrganizationStructure;
  try {
    structure = await readStructure();
  } catch (error) {
    logger.warn('could not read the organization; nothing is decided or revoked on it this run', { error });
    return { error: error instanceof Error ? error.name : 'Error' };
  }
  const accountIds = new Set([...structure.accounts.keys(), ...alsoAccounts]);
  const memberships = [...accountIds].map((accountId) => membershipIn(structure, accountId) as Known);
  for (const membership of memberships) remember(membership);
  units = new Map([...structure.units].map(([id, unit]) => [id, { ...unit }]));
  unitsReadAt = Date.parse(structure.readAt);
  await putCachedMemberships(memberships);
  return { structure };
}

function remember(membership: Known): void {
  remembered.set(membership.accountId, membership);
}

function fresh(membership: Known): boolean {
  return Date.now() - Date.parse(membership.readAt) < config().ORGANIZATION_CACHE_TTL * 1000;
}
