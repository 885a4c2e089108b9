import { randomUUID } from 'node:crypto';
import { isAdmitted, type ConnectionRecord, type ObservedConnection } from './domain/connection';
import { claimFor, remindApprovers, type Intent } from './domain/decisions';
import { enforces, pendingTimeoutStep, revocationFor, revocationLimits, withinRevocationLimits } from './domain/enforcement';
import type { RevocationLimitEvent } from './domain/outbound-event';
import { describeConnections } from './aws/ec2-gateway';
import { getConnections } from './aws/connection-store';
import { resolvePolicy, type StoredPolicy } from './aws/policy-store';
import { publishEvent } from './aws/event-publisher';
import { carryOutClaims, decideService, planContext, type Claimed } from './deciding';
import { updateConnection } from './conditional-update';
import { flushOutbox } from './outbox';
import { managedServiceIds } from './managed-services';
import { count, countDecisions, METRIC } from './metrics';
import { publishStrandedPolicyEvents } from './policy-outbox';
import { membershipIn, type Membership, type OrganizationStructure } from './domain/organization';
import { usesOrganization } from './domain/policy';
import { refreshOrganization } from './organization-membership';
import { shareService, type SharingSummary } from './sharing';
import { logger } from './logger';

/**
 * The reconciler's answer to a lost race: leave the connection to whoever
 * changed it, and look again next run.
 */
const LEAVE_TO_NEXT_RUN = { attempts: 1, whenExhausted: 'leave' } as const;
/** How history records what the reconciler found. */
const SOURCE = 'reconciled';
const MAX_CANDIDATES_IN_ALERT = 100;

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
  /** Actions EC2 refused or failed; the next run tries again. */
  'failed',
] as const;

type Counts = Record<(typeof COUNT_KEYS)[number], number>;

/** What one run did to one endpoint service. */
export interface ServiceSummary extends Counts {
  serviceId: string;
  /** Set when enforcement withheld its revocations: more than the safety limit allows. */
  revocationLimit?: { candidates: number; admitted: number; maxRevocationsPerRun: number; maxRevocationPercent: number };
  /** What sharing changed in the service's allowed principals (policies with sharing add or sync). */
  sharing?: SharingSummary | { error: { name: string; message: string } };
  /** Set when this service could not be reconciled. */
  error?: { name: string; message: string };
}

export interface ReconcileSummary {
  startedAt: string;
  finishedAt: string;
  services: ServiceSummary[];
  totals: Counts & { services: number; revocationLimitHits: number; failedServices: number };
}

/**
 * One reconcile run: discovers the managed services, reads every connection of
 * each from EC2, records and decides them as a notification would, then
 * enforces and applies pending timeouts. Throws before deciding anything when
 * the table or a policy cannot be read. A service that fails later is reported
 * in its summary, and the others are still reconciled.
 */
export async function reconcile(): Promise<ReconcileSummary> {
  const startedAt = new Date().toISOString();
  const serviceIds = await managedServiceIds();
  // Fail closed: every policy is read before anything is decided.
  const policies = new Map<string, StoredPolicy | undefined>();
  for (const serviceId of serviceIds) policies.set(serviceId, await resolvePolicy(serviceId));
  await publishStrandedPolicyEvents(serviceIds);
  // The organization's structure, read fresh each run when a policy names an OU or an organization.
  const organization = [...policies.values()].some((stored) => stored && usesOrganization(stored.policy)) ? await refreshOrganization() : undefined;
  const services: ServiceSummary[] = [];
  for (const serviceId of serviceIds) {
    const summary = emptySummary(serviceId);
    const stored = policies.get(serviceId);
    try {
      await reconcileService(summary, stored, organization);
    } catch (error) {
      logger.error('could not reconcile a service; the next run tries again', { serviceId, error });
      summary.error = error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
    }
    if (stored) summary.sharing = await shareOrReport(serviceId, stored, organization);
    services.push(summary);
  }
  return { startedAt, finishedAt: new Date().toISOString(), services, totals: totalsOf(services) };
}

/**
 * Reconciles one service with the policy read at the start of the run: each
 * record is read once, decided, and the same records and policy then drive
 * enforcement and pending timeouts. A failed action is counted, and the rest
 * goes on. Throws only when EC2 or the table cannot be read at all.
 */
async function reconcileService(summary: ServiceSummary, stored: StoredPolicy | undefined, organization: OrganizationRead | undefined): Promise<void> {
  const { serviceId } = summary;
  const observed = await describeConnections({ serviceId });
  summary.connections = observed.length;
  const read = await getConnections(observed.map(({ endpointId }) => ({ serviceId, endpointId })));
  const known = new Map(observed.map(({ endpointId }) => [endpointId, read.get(endpointId)]));
  const decided = await decideService(serviceId, observed, { source: SOURCE, policy: { stored }, records: known });
  for (const key of ['firstSeen', 'stateChanged', 'recovered', 'accepted', 'rejected', 'failed'] as const) summary[key] = decided.counts[key];
  const records = decided.records;
  const stillPending = observed.filter((c) => c.state === 'pendingAcceptance' && records.get(c.endpointId)?.state === 'pendingAcceptance').length;

  const policy = stored?.policy;
  const revocable = enforces(policy) ? observed.filter((c) => c.state === 'available') : [];
  const waiting = policy?.pendingTimeout ? observed.filter((c) => c.state === 'pendingAcceptance') : [];
  if (!stored || (!revocable.length && !waiting.length)) {
    summary.pending = stillPending;
    return;
  }
  const now = new Date();

  const revocations: Claimed[] = [];
  const candidates = revocable.flatMap((connection) => {
    const membership = organization && membershipFrom(organization, connection.ownerAccountId);
    const intent = revocationFor(stored.policy, records.get(connection.endpointId), connection.ownerAccountId, now, membership);
    return intent ? [{ connection, intent }] : [];
  });
  const admitted = observed.filter((c) => isAdmitted(c.state)).length + decided.counts.accepted;
  const limits = revocationLimits(stored.policy);
  if (!withinRevocationLimits(candidates.length, admitted, limits)) {
    summary.revocationLimit = { candidates: candidates.length, admitted, ...limits };
    await alertRevocationLimit(stored, serviceId, admitted, candidates);
  } else {
    for (const { connection, intent } of candidates) await claim(connection, records.get(connection.endpointId), intent, revocations);
  }

  const timeouts: Claimed[] = [];
  for (const connection of waiting) {
    const record = records.get(connection.endpointId);
    if (!record || record.state !== 'pendingAcceptance' || record.claim?.status === 'acting') continue;
    const step = pendingTimeoutStep(stored.policy, record, now);
    if (step?.kind === 'reject') await claim(connection, record, step.intent, timeouts);
    else if (step?.kind === 'remind' && (await remind(record))) summary.reminded++;
  }

  const results = await carryOutClaims(serviceId, [...revocations, ...timeouts], SOURCE);
  const revoked = new Set(revocations.map(({ record }) => record.endpointId));
  for (const [endpointId, result] of results) {
    if (result.status === 'failed') summary.failed++;
    else if (result.status === 'done') summary[revoked.has(endpointId) ? 'revoked' : 'timedOut']++;
  }
  summary.pending = stillPending - summary.timedOut;
}

type OrganizationRead = { structure: OrganizationStructure } | { error: string };

/** An account's membership as this run read the organization; unreadable when the read failed, so nothing is revoked on it. */
function membershipFrom(organization: OrganizationRead, accountId: string): Membership {
  return 'structure' in organization ? membershipIn(organization.structure, accountId) : { kind: 'unreadable', accountId, error: organization.error };
}

/** Shares a service as its policy says; a failure is reported in the summary, and the next run tries again. */
async function shareOrReport(
  serviceId: string,
  stored: StoredPolicy,
  organization: OrganizationRead | undefined,
): Promise<ServiceSummary['sharing']> {
  try {
    return await shareService(serviceId, stored, organization);
  } catch (error) {
    logger.error('could not share a service; the next run tries again', { serviceId, error });
    return { error: error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) } };
  }
}

/** Claims a connection for an action decided here; a connection another writer holds is left for the next run. */
async function claim(connection: ObservedConnection, record: ConnectionRecord | undefined, intent: Intent, into: Claimed[]): Promise<void> {
  const claimed = await updateConnection<Claimed | undefined>(
    connection,
    record,
    (latest) => {
      const plan = claimFor(latest, connection, intent, planContext(SOURCE));
      if (plan.kind === 'refused') {
        logger.info('not acting on a connection this run', { serviceId: connection.serviceId, endpointId: connection.endpointId, why: plan.why });
        return { stop: undefined };
      }
      return { write: plan.next, then: { record: plan.next, claim: plan.claim } };
    },
    LEAVE_TO_NEXT_RUN,
  );
  if (claimed) into.push(claimed);
}

/** Reminds approvers of a request still pending; false when another writer got there first. */
async function remind(record: ConnectionRecord): Promise<boolean> {
  const next = remindApprovers(record, planContext(SOURCE));
  const written = await updateConnection(record, record, () => ({ write: next, then: true }), LEAVE_TO_NEXT_RUN);
  if (!written) return false;
  await flushOutbox(next, record);
  logger.info('approvers reminded of a pending request', { serviceId: record.serviceId, endpointId: record.endpointId });
  return true;
}

async function alertRevocationLimit(
  stored: StoredPolicy,
  serviceId: string,
  admitted: number,
  candidates: { connection: ObservedConnection; intent: Intent }[],
): Promise<void> {
  const limits = revocationLimits(stored.policy);
  logger.warn('revocation limit reached: nothing revoked, a human decides', { serviceId, candidates: candidates.length, admitted, ...limits });
  const event: RevocationLimitEvent = {
    eventId: randomUUID(),
    eventType: 'revocation-limit-reached',
    occurredAt: new Date().toISOString(),
    serviceId,
    policyId: stored.policyId,
    admitted,
    limits,
    candidateCount: candidates.length,
    candidates: candidates.slice(0, MAX_CANDIDATES_IN_ALERT).map(({ connection, intent }) => ({
      endpointId: connection.endpointId,
      ownerAccountId: connection.ownerAccountId,
      rule: intent.rule,
      reason: intent.reason,
    })),
  };
  await publishEvent(event);
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

function emptySummary(serviceId: string): ServiceSummary {
  return { serviceId, ...zeroCounts() };
}

function zeroCounts(): Counts {
  return Object.fromEntries(COUNT_KEYS.map((key) => [key, 0])) as Counts;
}

function totalsOf(services: ServiceSummary[]): ReconcileSummary['totals'] {
  const totals = { ...zeroCounts(), services: services.length, revocationLimitHits: 0, failedServices: 0 };
  for (const service of services) {
    for (const key of COUNT_KEYS) totals[key] += service[key];
    if (service.revocationLimit) totals.revocationLimitHits++;
    if (service.error) totals.failedServices++;
  }
  return totals;
}
