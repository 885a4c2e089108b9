import { DEFAULT_POLICY_ID, parsePolicy, type Policy } from './domain/policy';
import { planService, summarize, type PlannedChange, type RevocationLimitTrip } from './domain/plan';
import { describeConnections } from './aws/ec2-gateway';
import { getConnections } from './aws/connection-store';
import { getCurrentPolicy } from './aws/policy-store';
import { isManagedService, managedServiceIds } from './managed-services';

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
 * Plans a candidate policy against every connection it would govern: a
 * service's own policy governs that service; the default policy governs every
 * managed service without one. Reads EC2 and the table, writes nothing. An
 * invalid candidate throws ValidationError naming the field, as PUT would.
 */
export async function planPolicy(policyId: string, document: unknown, now = new Date()): Promise<PolicyPlan> {
  const candidate = parsePolicy(document);
  const stored = await getCurrentPolicy(policyId);
  const governed = await governedServices(policyId, stored?.policy);
  const plans = [];
  for (const { serviceId, current } of governed) {
    const connections = await describeConnections({ serviceId });
    const tracked = connections.filter((c) => c.state === 'pendingAcceptance' || c.state === 'available');
    const records = await getConnections(tracked.map(({ endpointId }) => ({ serviceId, endpointId })));
    plans.push(planService({ serviceId, connections, records }, current, candidate, now));
  }
  return {
    policyId,
    baseVersion: stored?.version ?? null,
    changes: plans.flatMap((plan) => plan.changes),
    summary: summarize(plans),
    revocationLimit: plans.flatMap((plan) => (plan.revocationLimit ? [plan.revocationLimit] : [])),
  };
}

/** The services a policy governs, each with the policy that governs it today. */
async function governedServices(policyId: string, stored: Policy | undefined): Promise<{ serviceId: string; current: Policy | undefined }[]> {
  if (policyId !== DEFAULT_POLICY_ID) {
    if (!(await isManagedService(policyId))) return [];
    return [{ serviceId: policyId, current: stored ?? (await getCurrentPolicy(DEFAULT_POLICY_ID))?.policy }];
  }
  const governed = [];
  for (const serviceId of await managedServiceIds()) {
    if (!(await getCurrentPolicy(serviceId))) governed.push({ serviceId, current: stored });
  }
  return governed;
}
