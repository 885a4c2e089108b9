import type { Intent } from '../domain/intents';
import { planRun, type PlanContext, type ServicePlan } from '../domain/plan';
import type { ScopedFailure, Snapshot } from '../domain/snapshot';
import { applyServicePlan, noCounts, type ServiceOutcome } from './apply';
import type { EnginePorts, LatestPolicyVersion, MembershipReading } from './ports';
import { readSnapshot, withConfirmed, type Candidate } from './snapshot';
import type { ConflictPolicy } from './versioned-write';

/**
 * The engine's one entry point. Every caller hands it intents (a notification
 * batch, a reconcile run, an approver's decision, a policy plan); it reads one
 * snapshot for all of them, plans (lib/domain/plan.ts), and applies the plan:
 *
 *   intents → snapshot (lib/engine/snapshot.ts) → plan (lib/domain/plan.ts)
 *           → apply (lib/engine/apply.ts): write, act on EC2, record, publish
 */

export interface RunResult {
  services: ServiceOutcome[];
  /** What failed before any service was known (endpoints named without a service, the managed check). */
  failures: ScopedFailure[];
  /** Each policy read, with its outbox (the reconciler publishes what failed publishes left there). */
  policies: Map<string, LatestPolicyVersion | undefined>;
  /** The organization as a reconcile run read it (sharing uses the same reading). */
  organization?: MembershipReading;
}

/** How a caller wants its run carried out. */
export interface RunOptions {
  /**
   * The caller's answer to a write that keeps losing to other writers: retry
   * and then fail (notifications, approvers), or leave it to the next run (the
   * reconciler).
   */
  conflicts: ConflictPolicy;
  /**
   * `run`: a policy that cannot be read stops the whole run, and nothing is
   * applied to any service (the reconciler). Otherwise only that policy's
   * services are left undecided.
   */
  unreadablePolicy?: 'service' | 'run';
}

/** Carries out intents. Never throws for a connection or a service: what failed is in the result. */
export async function runEngine(intents: readonly Intent[], ports: EnginePorts, options: RunOptions): Promise<RunResult> {
  const read = await readSnapshot(intents, ports);
  const context = contextOf(ports);
  const { snapshot, plans } = await planOnConfirmedFacts(read.snapshot, ports, context);
  const unreadable = plans.flatMap((plan) => plan.failures.filter((failure) => !failure.endpointId && failure.code === 'UnreadablePolicyError'));
  const services: ServiceOutcome[] = [];
  for (const plan of plans) {
    const service = snapshot.services.find(({ work }) => work.serviceId === plan.serviceId);
    if (!service) continue;
    if (options.unreadablePolicy === 'run' && unreadable.length) {
      services.push(undecided(plan, service, unreadable));
      continue;
    }
    services.push(await applyServicePlan(plan, service, snapshot, ports, options.conflicts, context));
  }
  return { services, failures: snapshot.failures, policies: read.policies, ...(read.organization ? { organization: read.organization } : {}) };
}

/**
 * What the intents would do with `candidate` in place of the stored policy:
 * the same snapshot, read the same way (memberships included), and the same
 * plan, returned instead of applied. Writes nothing.
 */
export async function previewEngine(intents: readonly Intent[], ports: EnginePorts, candidate: Candidate): Promise<{ plans: ServicePlan[]; snapshot: Snapshot }> {
  const read = await readSnapshot(intents, ports, candidate);
  return planOnConfirmedFacts(read.snapshot, ports, contextOf(ports));
}

/**
 * Plans; when a revocation rests on an account's place in the organization that
 * this run did not read on its own, reads those accounts now and plans again.
 */
async function planOnConfirmedFacts(snapshot: Snapshot, ports: EnginePorts, context: PlanContext): Promise<{ plans: ServicePlan[]; snapshot: Snapshot }> {
  const plans = planRun(snapshot, context);
  const toConfirm = new Set(plans.flatMap((plan) => [...plan.toConfirm]));
  if (!toConfirm.size) return { plans, snapshot };
  const confirmed = withConfirmed(snapshot, await ports.memberships.direct([...toConfirm]));
  return { plans: planRun(confirmed, context), snapshot: confirmed };
}

/** A service none of whose plan is applied, failing with the policies that could not be read. */
function undecided(plan: ServicePlan, service: Snapshot['services'][number], unreadable: ServicePlan['failures']): ServiceOutcome {
  const failures = plan.failures.length ? plan.failures : unreadable.map((failure) => ({ ...failure, serviceId: plan.serviceId }));
  return { serviceId: plan.serviceId, policy: service.policy, counts: { ...noCounts(), observed: service.connections.length }, failures, records: new Map(service.records) };
}

function contextOf(ports: EnginePorts): PlanContext {
  return { now: ports.clock.now(), newId: ports.newId, leaseSeconds: ports.settings.leaseSeconds };
}
