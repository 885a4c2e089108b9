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
import type { SpokeUnreachableEvent } from './domain/outbound-event';
import { wireNotifications } from './notification-wiring';

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
  /** Where it lives: the provider's account and the service's Region (the spoke), when known. */
  providerAccountId?: string;
  serviceRegion?: string;
  /** Set when EC2 describes the service without the vpce-gatekeeper:managed=true tag: the stack's roles may not act on it. */
  untagged?: string;
  /** Set when the run wired the service's connection notifications (it lacked some): the topic and the events it created. */
  notificationsWired?: { topicArn: string; events: string[] };
  /** Set when the service lacked connection notifications and the run could not create them. */
  notificationsError?: Failure;
  /** Set when enforcement withheld its revocations: more than the safety limit allows. */
  revocationLimit?: { candidates: number; admitted: number; maxRevocationsPerRun: number; maxRevocationPercent: number };
  /** What sharing changed in the service's allowed principals (policies with sharing add or sync). */
  sharing?: SharingSummary | { error: Failure };
  /** Set when this service could not be reconciled (its policy, EC2 or the table could not be read). */
  error?: Failure;
}

/** What one run found of one spoke: its services, and why it could not be reached. */
export interface SpokeSummary {
  providerAccountId: string;
  serviceRegion: string;
  /** Its managed services this run reconciled (or tried to). */
  services: number;
  /** Set when the spoke could not be reached: its services could not be listed, or not read. Nothing of it was decided or revoked. */
  error?: Failure;
}

export interface ReconcileSummary {
  startedAt: string;
  finishedAt: string;
  services: ServiceSummary[];
  /** With spokes: each of them (the hub's own first). */
  spokes?: SpokeSummary[];
  totals: SummaryCounts & { services: number; revocationLimitHits: number; failedServices: number; spokeErrors: number; notificationsWired: number };
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
  const serviceIds = await ports.services.ids({ fresh: true });
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
    const location = ports.services.locationOf?.(outcome.serviceId);
    if (location?.accountId) Object.assign(summary, { providerAccountId: location.accountId, serviceRegion: location.region });
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
  await noteUntagged(services, ports);
  for (const wiring of await wireNotifications(serviceIds, ports)) {
    const summary = services.find((service) => service.serviceId === wiring.serviceId);
    if (!summary) continue;
    if (wiring.created) summary.notificationsWired = { topicArn: wiring.topicArn, events: wiring.created };
    if (wiring.error) summary.notificationsError = wiring.error;
  }
  const spokes = await summarizeSpokes(serviceIds, services, ports);
  return { startedAt, finishedAt: ports.clock.now().toISOString(), services, ...(spokes ? { spokes } : {}), totals: totalsOf(services, spokes) };
}

/** What the summary and the log say of a managed service without the tag. */
export const UNTAGGED_MESSAGE = "tag it vpce-gatekeeper:managed=true: the stack's roles act only on tagged services";

/**
 * Names each managed service EC2 describes without the vpce-gatekeeper:managed=true tag. The
 * stack's roles act only on tagged services, so its requests cannot be decided (IAM refuses the
 * Accept or Reject, an action failure) until someone tags it: the summary and the log say so.
 */
async function noteUntagged(services: ServiceSummary[], ports: EnginePorts): Promise<void> {
  if (!ports.services.untaggedOf || !services.length) return;
  let untagged: string[];
  try {
    untagged = await ports.services.untaggedOf(services.map(({ serviceId }) => serviceId));
  } catch (error) {
    logger.warn("could not read the managed services' tags", { error });
    return;
  }
  for (const summary of services) {
    if (!untagged.includes(summary.serviceId)) continue;
    summary.untagged = UNTAGGED_MESSAGE;
    logger.warn(`a managed service is not tagged: ${UNTAGGED_MESSAGE}`, { serviceId: summary.serviceId });
  }
}

/**
 * Each spoke of a fleet, and why it could not be reached: its listing failed, or every service
 * of it that the run read failed. Such a spoke fails alone: nothing of it was decided or revoked,
 * its requests wait, and a `spoke-unreachable` event says so; the other spokes were decided.
 */
async function summarizeSpokes(serviceIds: string[], services: ServiceSummary[], ports: EnginePorts): Promise<SpokeSummary[] | undefined> {
  const statuses = ports.services.spokes?.() ?? [];
  if (statuses.length < 2) return undefined;
  const summaries: SpokeSummary[] = [];
  for (const { spoke, failure } of statuses) {
    const here = services.filter((service) => service.providerAccountId === spoke.accountId && service.serviceRegion === spoke.region);
    const unread = here.length > 0 && here.every((service) => service.error) ? here[0]?.error : undefined;
    const error = failure ?? unread;
    summaries.push({ providerAccountId: spoke.accountId, serviceRegion: spoke.region, services: here.length, ...(error ? { error } : {}) });
    if (!error) continue;
    logger.error('a spoke could not be reached: nothing of it was decided or revoked', { spoke: `${spoke.accountId}/${spoke.region}`, ...error });
    const event: SpokeUnreachableEvent = {
      eventId: ports.newId(),
      eventType: 'spoke-unreachable',
      occurredAt: ports.clock.now().toISOString(),
      serviceId: '*',
      providerAccountId: spoke.accountId,
      serviceRegion: spoke.region,
      error,
      serviceIds: serviceIds.filter((serviceId) => {
        const location = ports.services.locationOf?.(serviceId);
        return location?.accountId === spoke.accountId && location.region === spoke.region;
      }),
    };
    try {
      await ports.publisher.publish(event);
    } catch (publishError) {
      logger.error('could not announce an unreachable spoke', { spoke: `${spoke.accountId}/${spoke.region}`, error: publishError });
    }
  }
  return summaries;
}

/** Adds a run's numbers to the invocation's metrics. */
export function recordRunMetrics({ totals, services }: ReconcileSummary): void {
  countDecisions({ accept: totals.accepted, reject: totals.rejected + totals.revoked + totals.timedOut });
  count(METRIC.pendingConnections, totals.pending);
  count(METRIC.driftRepaired, totals.firstSeen + totals.stateChanged + totals.recovered);
  count(METRIC.revocations, totals.revoked);
  count(METRIC.revocationLimitHit, totals.revocationLimitHits);
  count(METRIC.actionFailures, totals.failed);
  count(METRIC.spokeErrors, totals.spokeErrors);
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

function totalsOf(services: ServiceSummary[], spokes: SpokeSummary[] = []): ReconcileSummary['totals'] {
  const totals = {
    ...(Object.fromEntries(COUNT_KEYS.map((key) => [key, 0])) as SummaryCounts),
    services: services.length,
    revocationLimitHits: 0,
    failedServices: 0,
    spokeErrors: spokes.filter((spoke) => spoke.error).length,
    notificationsWired: services.filter((service) => service.notificationsWired).length,
  };
  for (const service of services) {
    for (const key of COUNT_KEYS) totals[key] += service[key];
    if (service.revocationLimit) totals.revocationLimitHits++;
    if (service.error) totals.failedServices++;
  }
  return totals;
}
