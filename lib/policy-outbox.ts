import { DEFAULT_POLICY_ID } from './domain/policy';
import type { PolicyChangedEvent } from './domain/outbound-event';
import { clearPolicyOutbox, getLatestPolicyVersion } from './aws/policy-store';
import { publishEvent } from './aws/event-publisher';
import { config } from './config';
import { logger } from './logger';

/**
 * policy-changed events go through an outbox, like the connection events: each
 * is saved with the version it announces, published, then removed. A version is
 * never lost to a failed publish; a crash in between publishes again later, so a
 * subscriber may see an event twice (same eventId), never not at all. Only the
 * newest version's outbox counts: a writer carries forward what it replaces.
 */

/** Publishes a version's outbox in order and empties it. Returns false, and leaves it for later, when SNS fails. */
export async function publishPolicyOutbox(version: { policyId: string; version: number; outbox: PolicyChangedEvent[] }): Promise<boolean> {
  const { policyId, outbox } = version;
  try {
    for (const event of outbox) await publishEvent(event);
    await clearPolicyOutbox(policyId, version.version);
    return true;
  } catch (error) {
    logger.warn('policy-changed not published yet; the next change or the reconciler publishes it', {
      policyId,
      version: version.version,
      eventIds: outbox.map((event) => event.eventId),
      error,
    });
    return false;
  }
}

/**
 * Publishes what failed publishes left behind on the newest version of each
 * policy (the default's included), once it is older than a decision lease, so as
 * not to race a writer still publishing. For the reconciler. Returns how many
 * events were published and how many policies still hold some.
 */
export async function publishStrandedPolicyEvents(serviceIds: string[], now = new Date()): Promise<{ published: number; stranded: number }> {
  const strandedBefore = now.getTime() - config().DECISION_LEASE_SECONDS * 1000;
  const result = { published: 0, stranded: 0 };
  for (const policyId of new Set([DEFAULT_POLICY_ID, ...serviceIds])) {
    const latest = await getLatestPolicyVersion(policyId);
    if (!latest?.outbox.length || !latest.outbox.some((event) => Date.parse(event.occurredAt) < strandedBefore)) continue;
    if (await publishPolicyOutbox(latest)) result.published += latest.outbox.length;
    else result.stranded += 1;
  }
  return result;
}
