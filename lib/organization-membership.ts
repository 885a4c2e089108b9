import type { Membership, OrganizationStructure } from './domain/organization';
import { membershipIn } from './domain/organization';
import { getCachedMemberships, putCachedMemberships } from './aws/organization-store';
import { forgetOrganization, readMembership, readStructure, type UnitCache } from './aws/organizations-gateway';
import { usesOrganization, type Policy } from './domain/policy';
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
let units: UnitCache = new Map();
let unitsReadAt = 0;
const reading = new Map<string, Promise<Membership>>();
/** The whole organization as this container last read it (the reconciler, each run). */
let structure: OrganizationStructure | undefined;

/**
 * The memberships of accounts, by account id: from this container's memory,
 * else the table's cache, else Organizations (cached in both afterwards). An
 * account whose membership could not be read is `unreadable`, with the error's
 * name; once one read fails, the others of the same call are not attempted.
 */
export async function membershipsOf(accountIds: readonly string[]): Promise<Map<string, Membership>> {
  const result = new Map<string, Membership>();
  const wanted = [...new Set(accountIds)];
  if (structure && Date.now() - Date.parse(structure.readAt) < config().ORGANIZATION_CACHE_TTL * 1000) {
    for (const accountId of wanted) result.set(accountId, membershipIn(structure, accountId));
    return result;
  }
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
export async function refreshOrganization(alsoAccounts: readonly string[] = []): Promise<{ structure: OrganizationStructure } | { error: string }> {
  let read: OrganizationStructure;
  try {
    read = await readStructure();
  } catch (error) {
    logger.warn('could not read the organization; nothing is decided or revoked on it this run', { error });
    return { error: error instanceof Error ? error.name : 'Error' };
  }
  const accountIds = new Set([...read.accounts.keys(), ...alsoAccounts]);
  const memberships = [...accountIds].map((accountId) => membershipIn(read, accountId) as Known);
  for (const membership of memberships) remember(membership);
  units = new Map([...read.units].map(([id, unit]) => [id, Promise.resolve({ ...unit })]));
  unitsReadAt = Date.parse(read.readAt);
  structure = read;
  await putCachedMemberships(memberships);
  return { structure: read };
}

/** Forgets what this container remembers of the organization (the local stack's reset). */
export function forgetMemberships(): void {
  remembered.clear();
  units = new Map();
  unitsReadAt = 0;
  structure = undefined;
  forgetOrganization();
}

/**
 * The memberships needed to decide pending connections under a policy: none
 * when it has no entry by OU or organization, so that such policies never
 * reach Organizations.
 */
export async function membershipsToDecide(
  policy: Policy | undefined,
  connections: readonly { ownerAccountId: string; state: string }[],
): Promise<Map<string, Membership>> {
  if (!policy || !usesOrganization(policy)) return new Map();
  const owners = connections.filter((connection) => connection.state === 'pendingAcceptance').map((connection) => connection.ownerAccountId);
  return owners.length ? membershipsOf(owners) : new Map();
}

function remember(membership: Known): void {
  remembered.set(membership.accountId, membership);
}

function fresh(membership: Known): boolean {
  return Date.now() - Date.parse(membership.readAt) < config().ORGANIZATION_CACHE_TTL * 1000;
}
