import type { EnginePorts, LatestPolicyVersion } from './engine/ports';
import type { PolicyChangedEvent } from './domain/outbound-event';
import { logger } from './logger';

/**
 * policy-changed events go through an outbox, like the connection events: each
 * is saved with the version it announces, published, then removed. A version is
 * never lost to a failed publish; a crash in between publishes again later, so a
 * subscriber may see an event twice (same eventId), never not at all. Only the
 * newest version's outbox counts: a writer carries forward what it replaces.
 */

/** Publishes a version's outbox in order and empties it. Returns false, and leaves it for later, when SNS fails. */
export async function publishPolicyOutbox(
  version: { policyId: string; version: number; outbox: PolicyChangedEvent[] },
  ports: Pick<EnginePorts, 'publisher' | 'policies'>,
): Promise<boolean> {
  const { policyId, outbox } = version;
  try {
    for (const event of outbox) await ports.publisher.publish(event);
    await ports.policies.clearOutbox(policyId, version.version);
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
 * Publishes what failed publishes left behind on the newest versions a run read
 * (`read`, by policy id), once older than a decision lease, so as not to race a
 * writer still publishing. For the reconciler. Returns how many events were
 * published and how many policies still hold some.
 */
export async function publishStrandedPolicyEvents(
  read: ReadonlyMap<string, LatestPolicyVersion | undefined>,
  ports: Pick<EnginePorts, 'publisher' | 'policies' | 'clock' | 'settings'>,
): Promise<{ published: number; stranded: number }> {
  const strandedBefore = ports.clock.now().getTime() - ports.settings.leaseSeconds * 1000;
  const result = { published: 0, stranded: 0 };
  for (const latest of read.values()) {
    if (!latest?.outbox.length || !latest.outbox.some((event) => Date.parse(event.occurredAt) < strandedBefore)) continue;
    if (await publishPolicyOutbox(latest, ports)) result.published += latest.outbox.length;
    else result.stranded += 1;
  }
  return result;
}
