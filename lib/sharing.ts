import { randomUUID } from 'node:crypto';
import { revocationLimits } from './domain/enforcement';
import type { OrganizationStructure } from './domain/organization';
import type { SharingChangedEvent } from './domain/outbound-event';
import { accountPrincipal, admittedAccounts, planSharing } from './domain/sharing';
import { describeAllowedPrincipals, modifyAllowedPrincipals } from './aws/endpoint-service-permissions';
import { getSharedPrincipals, putSharedPrincipals } from './aws/organization-store';
import type { StoredPolicy } from './aws/policy-store';
import { publishEvent } from './aws/event-publisher';
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
 * not present is dropped from the record at the next run. Undefined when the
 * policy does not share. Throws when EC2 or the table fails: the next run tries again.
 */
export async function shareService(
  serviceId: string,
  stored: StoredPolicy,
  organization: { structure: OrganizationStructure } | { error: string } | undefined,
): Promise<SharingSummary | undefined> {
  const mode = stored.policy.sharing;
  if (!mode || mode === 'off') return undefined;
  const admitted = admittedAccounts(stored.policy, organization && 'structure' in organization ? organization.structure : undefined, new Date());
  if ('unreadable' in admitted) {
    const error = organization && 'error' in organization ? organization.error : 'not read';
    logger.warn('sharing skipped: the organization could not be read', { serviceId, error });
    return { added: 0, removed: 0, skippedByLimit: 0, skipped: `organization membership could not be read: ${error}` };
  }
  const current = await describeAllowedPrincipals(serviceId);
  const recorded = await getSharedPrincipals(serviceId);
  const plan = planSharing(mode, admitted.accounts.map(accountPrincipal), current, recorded.principals, revocationLimits(stored.policy));
  const changed = plan.add.length > 0 || plan.remove.length > 0;
  if (changed) {
    await putSharedPrincipals(serviceId, [...new Set([...plan.ours, ...plan.remove])].sort(), recorded.version);
    await modifyAllowedPrincipals(serviceId, { add: plan.add, remove: plan.remove });
    await putSharedPrincipals(serviceId, plan.ours, recorded.version + 1);
  } else if (plan.ours.join() !== [...recorded.principals].sort().join()) {
    await putSharedPrincipals(serviceId, plan.ours, recorded.version);
  }
  if (changed || plan.skipped.length) {
    const event: SharingChangedEvent = {
      eventId: randomUUID(),
      eventType: 'sharing-changed',
      occurredAt: new Date().toISOString(),
      serviceId,
      policyId: stored.policyId,
      mode,
      added: plan.add,
      removed: plan.remove,
      skippedByLimit: plan.skipped,
    };
    await publishEvent(event);
    logger.info('allowed principals changed', { serviceId, added: plan.add.length, removed: plan.remove.length, skippedByLimit: plan.skipped.length });
  }
  return { added: plan.add.length, removed: plan.remove.length, skippedByLimit: plan.skipped.length };
}
