import { revocationLimits } from './domain/enforcement';
import type { Membership, OrganizationStructure } from './domain/organization';
import type { SharingChangedEvent } from './domain/outbound-event';
import { usesOrganization, type StoredPolicy } from './domain/policy';
import { accountOfPrincipal, accountPrincipal, admittedAccounts, planSharing } from './domain/sharing';
import type { MembershipReading } from './engine/ports';
import type { EnginePorts } from './engine/ports';
import { writeVersioned } from './engine/versioned-write';
import { logger } from './logger';

/** What sharing did to one service in one run. */
export interface SharingSummary {
  added: number;
  removed: number;
  skippedByLimit: number;
  /** Set when sharing was skipped because the organization could not be read. */
  skipped?: string;
}

/**
 * Brings a service's allowed principals in line with what its policy admits
 * (`sharing: add | sync`), records what it added, and announces the change.
 * What it is about to add is recorded before EC2 is asked, so that a run that
 * dies in between never forgets a principal it added; a principal recorded but
 * not present is dropped from the record at the next run. A principal is
 * removed only on a fact: an account the run's organization reading does not
 * place is read on its own first. Undefined when the policy does not share, or
 * when another run changed the record first. Throws when EC2 or the table fails:
 * the next run tries again.
 */
export async function shareService(
  serviceId: string,
  stored: StoredPolicy,
  organization: MembershipReading | undefined,
  ports: EnginePorts,
): Promise<SharingSummary | undefined> {
  const mode = stored.policy.sharing;
  if (!mode || mode === 'off') return undefined;
  const now = ports.clock.now();
  let structure = organization?.structure;
  if (usesOrganization(stored.policy) && !structure) {
    const error = organization?.error ?? 'not read';
    logger.warn('sharing skipped: the organization could not be read', { serviceId, error });
    return { added: 0, removed: 0, skippedByLimit: 0, skipped: `organization membership could not be read: ${error}` };
  }
  const ec2 = ports.ec2.forService(serviceId);
  const current = await ec2.allowedPrincipals(serviceId);
  const recorded = await ports.sharing.get(serviceId);
  const limits = revocationLimits(stored.policy);
  let unknown: string[] = [];
  // An account entry's account the structure does not place is read on its own: it may sit below a denied OU.
  let readOneByOne = new Map<string, Membership>();
  const named = stored.policy.allow.flatMap((entry) => (entry.account && entry.account !== '*' ? [entry.account] : []));
  const unplacedNamed = structure ? named.filter((accountId) => !structure?.accounts.has(accountId)) : [];
  if (unplacedNamed.length && usesOrganization(stored.policy)) readOneByOne = (await ports.memberships.direct(unplacedNamed)).memberships;
  const planWith = (known: OrganizationStructure | undefined) => {
    const admitted = admittedAccounts(stored.policy, known, now, readOneByOne);
    const accounts = 'accounts' in admitted ? admitted.accounts : [];
    return planSharing(mode, [...accounts.map(accountPrincipal), ...unknown], current, recorded.principals, limits);
  };
  let plan = planWith(structure);
  if (structure && plan.remove.length) {
    // Removing rests on the account not being admitted: read the ones the structure does not place.
    const placed = structure.accounts;
    const unplaced = plan.remove.map(accountOfPrincipal).filter((accountId): accountId is string => !!accountId && !placed.has(accountId));
    if (unplaced.length) {
      const read = withReadAccounts(structure, await ports.memberships.direct(unplaced));
      structure = read.structure;
      // An account that could not be read keeps its principal: nothing is removed on an unknown.
      unknown = read.unreadable.map(accountPrincipal).filter((principal) => current.includes(principal));
      plan = planWith(structure);
    }
  }
  const changed = plan.add.length > 0 || plan.remove.length > 0;
  const keepRecord = plan.ours.join() === [...recorded.principals].sort().join();
  if (!changed && keepRecord && !plan.skipped.length) return { added: 0, removed: 0, skippedByLimit: 0 };
  const item = {
    read: () => ports.sharing.get(serviceId),
    write: (next: { principals: string[]; version: number }, expected: { version: number } | undefined) =>
      ports.sharing.put(serviceId, next.principals, expected?.version ?? 0),
  };
  const oneTry = { attempts: 1, whenExhausted: 'leave' } as const;
  if (changed) {
    const intending = { principals: [...new Set([...plan.ours, ...plan.remove])].sort(), version: recorded.version + 1 };
    if (!(await writeVersioned(item, recorded, () => ({ write: intending, then: true }), oneTry))) return undefined;
    await ec2.modifyAllowedPrincipals(serviceId, { add: plan.add, remove: plan.remove });
    await writeVersioned(item, intending, () => ({ write: { principals: plan.ours, version: intending.version + 1 }, then: true }), oneTry);
  } else if (!keepRecord) {
    await writeVersioned(item, recorded, () => ({ write: { principals: plan.ours, version: recorded.version + 1 }, then: true }), oneTry);
  }
  if (changed || plan.skipped.length) {
    const event: SharingChangedEvent = {
      eventId: ports.newId(),
      eventType: 'sharing-changed',
      occurredAt: now.toISOString(),
      serviceId,
      policyId: stored.policyId,
      mode,
      added: plan.add,
      removed: plan.remove,
      skippedByLimit: plan.skipped,
    };
    await ports.publisher.publish(event);
    logger.info('allowed principals changed', { serviceId, added: plan.add.length, removed: plan.remove.length, skippedByLimit: plan.skipped.length });
  }
  return { added: plan.add.length, removed: plan.remove.length, skippedByLimit: plan.skipped.length };
}

/** The structure with accounts read one by one: members placed, accounts outside left out; and the accounts that could not be read. */
function withReadAccounts(structure: OrganizationStructure, reading: MembershipReading): { structure: OrganizationStructure; unreadable: string[] } {
  const accounts = new Map(structure.accounts);
  const units = new Map(structure.units);
  const unreadable: string[] = [];
  for (const [accountId, membership] of reading.memberships) {
    if (membership.kind === 'unreadable') unreadable.push(accountId);
    if (membership.kind !== 'member') continue;
    const [, ...path] = membership.path;
    let parentId = structure.root.id;
    for (const node of path) {
      if (!units.has(node.id)) units.set(node.id, { ...node, parentId });
      parentId = node.id;
    }
    accounts.set(accountId, { status: membership.status, parentId });
  }
  return { structure: { ...structure, accounts, units }, unreadable };
}
