/**
 * What an AWS Organization says about an account, as facts the policy matches
 * against. Pure: the facts are read elsewhere (lib/aws/organizations-gateway.ts)
 * and handed in, with the time they were read.
 */

/** An account's status, as Organizations spells it. Only ACTIVE accounts match allow entries by OU or organization. */
export type AccountStatus = 'ACTIVE' | 'SUSPENDED' | 'PENDING_CLOSURE';

/** The root or an organizational unit on an account's path. */
export interface OrganizationNode {
  id: string;
  name: string;
}

/**
 * An account's place in the organization:
 * - member: its status and its path from the root to its parent (root first);
 * - outside: Organizations says it is not an account of the organization;
 * - unreadable: the organization could not be read (denied, throttled,
 *   unreachable); `error` is the error's name, such as AccessDeniedException.
 */
export type Membership =
  | { kind: 'member'; accountId: string; organizationId: string; status: AccountStatus; path: OrganizationNode[]; readAt: string }
  | { kind: 'outside'; accountId: string; organizationId: string; readAt: string }
  | { kind: 'unreadable'; accountId: string; error: string };

/** The facts that a decision used, as shown by evaluate: the OU path and the status, and when they were read. */
export interface MembershipFacts {
  organizationId?: string;
  /** "Root › Workloads › Prod"; absent for an account outside the organization. */
  path?: string;
  /** The OU ids of the path, root first. */
  pathIds?: string[];
  status?: AccountStatus;
  member: boolean;
  readAt?: string;
  /** Set when the organization could not be read. */
  error?: string;
}

/** The facts of a membership, for the record and the API. */
export function membershipFacts(membership: Membership): MembershipFacts {
  switch (membership.kind) {
    case 'member':
      return {
        organizationId: membership.organizationId,
        path: pathText(membership),
        pathIds: membership.path.map((node) => node.id),
        status: membership.status,
        member: true,
        readAt: membership.readAt,
      };
    case 'outside':
      return { organizationId: membership.organizationId, member: false, readAt: membership.readAt };
    case 'unreadable':
      return { member: false, error: membership.error };
  }
}

/** "Root › Workloads › Prod": the account's path from the root, by name. */
function pathText(membership: Extract<Membership, { kind: 'member' }>): string {
  return membership.path.map((node) => node.name).join(' › ');
}

/** "Root › Workloads › Prod, ACTIVE, read at 2026-11-23T12:00:00.000Z": the facts a reason quotes. */
export function factsText(membership: Extract<Membership, { kind: 'member' }>): string {
  return `${pathText(membership)}, ${membership.status}, read at ${membership.readAt}`;
}

/**
 * How far above the account an OU sits: 0 for its parent, 1 for the parent's
 * parent, and so on; undefined when the account is not below it.
 */
export function distanceToOu(membership: Membership, organizationalUnitId: string): number | undefined {
  if (membership.kind !== 'member') return undefined;
  const index = membership.path.findIndex((node) => node.id === organizationalUnitId);
  return index < 0 ? undefined : membership.path.length - 1 - index;
}

/** Whether the account is an account of this organization, whatever its status. */
export function inOrganization(membership: Membership, organizationId: string): boolean {
  return membership.kind === 'member' && membership.organizationId === organizationId;
}

/** The reason a held request gives when the organization could not be read. */
export function unreadableReason(error: string): string {
  return `organization membership could not be read: ${error}`;
}

/**
 * The organization as one walk saw it: the root, every OU, and every account
 * where the walk found it. A walk takes many calls over seconds and is not
 * atomic: an account that moved while it went on can be seen twice or not at
 * all, and one created meanwhile is missing. Only `verifiedStructure` turns it
 * into facts.
 */
export interface OrganizationWalk {
  organizationId: string;
  root: OrganizationNode;
  /** By OU id. */
  units: Map<string, OrganizationNode & { parentId: string }>;
  /** By account id: each place the walk found the account. */
  accounts: Map<string, { status: AccountStatus; parentId: string }[]>;
  readAt: string;
}

/** The organization's accounts whose place is known: each with its status and parent. */
export interface OrganizationStructure {
  organizationId: string;
  root: OrganizationNode;
  /** By OU id. */
  units: Map<string, OrganizationNode & { parentId: string }>;
  /** By account id: only accounts whose place was verified. */
  accounts: Map<string, { status: AccountStatus; parentId: string }>;
  readAt: string;
}

/**
 * What of a walk can be trusted, checked against Organizations' flat listing of
 * every account (ListAccounts): an account found exactly once, with the status
 * the listing gives. `unverified` are the accounts the two disagree on (found
 * twice, found but not listed, listed but not found, another status): their
 * place is unknown until each is read on its own. Absence from either listing
 * is never taken to mean an account is outside the organization.
 */
export function verifiedStructure(
  walk: OrganizationWalk,
  listed: ReadonlyMap<string, AccountStatus>,
): { structure: OrganizationStructure; unverified: Set<string> } {
  const accounts = new Map<string, { status: AccountStatus; parentId: string }>();
  const unverified = new Set<string>();
  for (const [accountId, sightings] of walk.accounts) {
    const [only] = sightings;
    if (sightings.length === 1 && only && listed.get(accountId) === only.status) accounts.set(accountId, only);
    else unverified.add(accountId);
  }
  for (const accountId of listed.keys()) if (!accounts.has(accountId)) unverified.add(accountId);
  const { organizationId, root, units, readAt } = walk;
  return { structure: { organizationId, root, units, accounts, readAt }, unverified };
}

/**
 * An account's membership as a verified structure shows it; undefined when the
 * structure does not have the account (which says nothing about where it is).
 */
export function membershipIn(structure: OrganizationStructure, accountId: string): Extract<Membership, { kind: 'member' }> | undefined {
  const account = structure.accounts.get(accountId);
  const { organizationId, readAt } = structure;
  if (!account) return undefined;
  const path: OrganizationNode[] = [];
  const seen = new Set<string>();
  for (let id: string | undefined = account.parentId; id !== undefined && !seen.has(id); ) {
    seen.add(id);
    if (id === structure.root.id) {
      path.unshift({ ...structure.root });
      break;
    }
    const unit = structure.units.get(id);
    if (!unit) return undefined;
    path.unshift({ id: unit.id, name: unit.name });
    id = unit.parentId;
  }
  if (path[0]?.id !== structure.root.id) return undefined;
  return { kind: 'member', accountId, organizationId, status: account.status, path, readAt };
}
