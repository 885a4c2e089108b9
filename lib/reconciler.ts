import type { Intent } from './domain/intents';
import { awsPorts } from './aws/ports';
import type { Counts } from './engine/apply';
import { runEngine } from './engine/engine';
import type { EnginePorts } from './engine/ports';
import type { ConflictPolicy } from './engine/versioned-write';
import { describeError, type Failure } from './errors';
import { count, countDecisions, METRIC } from './metrics';
import { publishStrandedPolicyEvents } from './policy-events';
import { shareService, type SharingSummary } from './sharing';
import { logger } from './logger';

/**
 * The reconciler's answer to a lost race: leave the connection to whoever
 * changed it, and look again next run.
 */
const LEAVE_TO_NEXT_RUN: ConflictPolicy = { attempts: 1, whenExhausted: 'leave' };

const COUNT_KEYS = [
  /** Connections EC2 reported, in every state. */
  'connections',
  'firstSeen',
  'stateChanged',
  'recovered',
  'accepted',
  'rejected',
  /** Still pendingAcceptance when the run was done. */
  'pending',
  'revoked',
  /** Rejected because they were pending for longer than the policy's pendingTimeout. */
  'timedOut',
  'reminded',
  /** Connections that could not be decided (an action EC2 refused or failed); the next run tries again. */
  'failed',
] as const;

type SummaryCounts = Record<(typeof COUNT_KEYS)[number], number>;

/** What one run did to one endpoint service. */
export interface ServiceSummary extends SummaryCounts {
  serviceId: string;
  /** Set when enforcement withheld its revocations: more than the safety limit allows. */
  revocationLimit?: { candidates: number; admitted: number; maxRevocationsPerRun: number; maxRevocationPercent: number };
  /** What sharing changed in the service's allowed principals (policies with sharing add or sync). */
  sharing?: SharingSummary | { error: Failure };
  /** Set when this service could not be reconciled (its policy, EC2 or the table could not be read). */
  error?: Failure;
}

export interface ReconcileSummary {
  startedAt: string;
  finishedAt: string;
  services: ServiceSummary[];
  totals: SummaryCounts & { services: number; revocationLimitHits: number; failedServices: number };
}

/**
 * One reconcile run, one round of the engine: for every managed service, every
 * connection from EC2 recorded and the waiting ones decided, then enforcement
 * and pending timeouts, all planned from one snapshot (each policy, the default
 * included, read once). Then sharing, and the policy-changed events failed
 * publishes left behind. A service that fails is reported in its summary, and
 * the others are still reconciled; but a policy that cannot be read stops the
 * whole run (fail closed: every policy is read before anything is decided).
 * Throws only when the managed services cannot be listed.
 */
export async function reconcile(ports: EnginePorts = awsPorts()): Promise<ReconcileSummary> {
  const startedAt = ports.clock.now().toISOString();
  const serviceIds = await ports.services.ids();
  const intents = serviceIds.flatMap((serviceId): Intent[] => [
    { kind: 'reconcile', serviceId },
    { kind: 'enforce', serviceId },
    { kind: 'pending-timeout', serviceId },
  ]);
  const run = await runEngine(intents, ports, { conflicts: LEAVE_TO_NEXT_RUN, unreadablePolicy: 'run' });
  await publishStrandedPolicyEvents(run.policies, ports);
  const services: ServiceSummary[] = [];
  for (const outcome of run.services) {
    const summary = summaryOf(outcome.serviceId, outcome.counts);
    const serviceFailure = outcome.failures.find((failure) => !failure.endpointId);
    if (serviceFailure) summary.error = { code: serviceFailure.code, message: serviceFailure.message };
    if (outcome.revocationLimit) {
      const { candidates, admitted, limits } = outcome.revocationLimit;
      summary.revocationLimit = { candidates: candidates.length, admitted, ...limits };
    }
    if (outcome.policy.kind === 'policy') {
      try {
        const sharing = await shareService(outcome.serviceId, outcome.policy.stored, run.organization, ports);
        if (sharing) summary.sharing = sharing;
      } catch (error) {
        logger.error('could not share a service; the next run tries again', { serviceId: outcome.serviceId, error });
        summary.sharing = { error: describeError(error) };
      }
    }
    services.push(summary);
  }
  return { startedAt, finishedAt: ports.clock.now().toISOString(), services, totals: totalsOf(services) };
}

/** Adds a run's numbers to the invocation's metrics. */
export function recordRunMetrics({ totals, services }: ReconcileSummary): void {
  countDecisions({ accept: totals.accepted, reject: totals.rejected + totals.revoked + totals.timedOut });
  count(METRIC.pendingConnections, totals.pending);
  count(METRIC.driftRepaired, totals.firstSeen + totals.stateChanged + totals.recovered);
  count(METRIC.revocations, totals.revoked);
  count(METRIC.revocationLimitHit, totals.revocationLimitHits);
  count(METRIC.actionFailures, totals.failed);
  count(
    METRIC.sharingChanges,
    services.reduce((sum, { sharing }) => sum + (sharing && 'added' in sharing ? sharing.added + sharing.removed : 0), 0),
  );
}

function summaryOf(serviceId: string, counts: Counts): ServiceSummary {
  return {
    serviceId,
    connections: counts.observed,
    firstSeen: counts.firstSeen,
    stateChanged: counts.stateChanged,
    recovered: counts.recovered,
    accepted: counts.accepted,
    rejected: counts.rejected,
    pending: counts.pending,
    revoked: counts.revoked,
    timedOut: counts.timedOut,
    reminded: counts.reminded,
    failed: counts.failed,
  };
}

function totalsOf(services: ServiceSummary[]): ReconcileSummary['totals'] {
  const totals = { ...(Object.fromEntries(COUNT_KEYS.map((key) => [key, 0])) as SummaryCounts), services: services.length, revocationLimitHits: 0, failedServices: 0 };
  for (const service of services) {
    for (const key of COUNT_KEYS) totals[key] += service[key];
    if (service.revocationLimit) totals.revocationLimitHits++;
    if (service.error) totals.failedServices++;
  }
  return totals;
}
