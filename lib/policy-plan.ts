import type { Intent } from './domain/intents';
import { previewOf, summarize, type PlannedChange, type RevocationLimitTrip } from './domain/plan-preview';
import { DEFAULT_POLICY_ID, isPolicyName, parsePolicy, servicesGovernedBy } from './domain/policy';
import { awsPorts } from './aws/ports';
import { previewEngine } from './engine/engine';
import type { EnginePorts } from './engine/ports';
import { UnreadablePolicyError } from './errors';

export type { PlannedChange, RevocationLimitTrip };

/** What saving a candidate policy would do, before it is saved (POST /policies/{policyId}/plan). */
export interface PolicyPlan {
  policyId: string;
  /** The version the plan compares with (what If-Match would name), or null when the policy has none yet. */
  baseVersion: number | null;
  changes: PlannedChange[];
  summary: ReturnType<typeof summarize>;
  /** The services on which enforcement would trip the safety limit and revoke nothing. */
  revocationLimit: RevocationLimitTrip[];
}

/**
 * What saving a candidate policy and one reconcile run would do to every
 * connection it would govern (a service's own policy governs that service; a
 * named policy the services tagged with its name; the default every managed
 * service with neither): the engine's own plan,
 * on a snapshot read as a run reads it (memberships included), with the
 * candidate in place of the stored policy, shown instead of applied. Writes
 * nothing. An invalid candidate throws ValidationError naming the field, as PUT
 * would; a stored version that no longer validates, UnreadablePolicyError.
 */
export async function planPolicy(policyId: string, document: unknown, ports: EnginePorts = awsPorts()): Promise<PolicyPlan> {
  const candidate = parsePolicy(document);
  const latest = await ports.policies.latest(policyId);
  if (latest && !latest.valid) {
    throw new UnreadablePolicyError(`policy ${policyId} version ${latest.version} no longer validates (${latest.invalidReason}); replace it with a valid version`);
  }
  // The default and a named policy govern services without a policy of their own: those with no
  // vpce-gatekeeper:policy tag, and those tagged with the name.
  const byTag = policyId === DEFAULT_POLICY_ID || isPolicyName(policyId);
  const managed = byTag ? await ports.services.ids() : (await ports.services.isManaged(policyId)) ? [policyId] : [];
  const own = new Set<string>();
  if (byTag) for (const serviceId of managed) if (await ports.policies.latest(serviceId)) own.add(serviceId);
  const tags = byTag ? ((await ports.services.policyTagsOf?.(managed.filter((serviceId) => !own.has(serviceId)))) ?? new Map<string, string>()) : new Map<string, string>();
  const governed = servicesGovernedBy(policyId, managed, (serviceId) => own.has(serviceId), (serviceId) => tags.get(serviceId));
  const intents = governed.flatMap((serviceId): Intent[] => [
    { kind: 'reconcile', serviceId },
    { kind: 'enforce', serviceId },
    { kind: 'pending-timeout', serviceId },
  ]);
  const { plans, snapshot } = await previewEngine(intents, ports, { policyId, policy: candidate });
  // A service whose connections could not be read has no plan: the request fails as that read failed (503 when throttled).
  const unread = snapshot.services.flatMap((service) => service.unread).find((unread) => !unread.endpointIds);
  if (unread) throw unread.error instanceof Error ? unread.error : new Error(unread.failure.message);
  const now = ports.clock.now();
  const previews = plans.flatMap((plan) => {
    const service = snapshot.services.find(({ work }) => work.serviceId === plan.serviceId);
    return service ? [previewOf(service, plan, snapshot.memberships, now)] : [];
  });
  return {
    policyId,
    baseVersion: latest?.version ?? null,
    changes: previews.flatMap((preview) => preview.changes),
    summary: summarize(previews),
    revocationLimit: previews.flatMap((preview) => (preview.revocationLimit ? [preview.revocationLimit] : [])),
  };
}
