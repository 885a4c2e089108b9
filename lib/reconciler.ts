import { randomUUID } from 'node:crypto';
import { isAdmitted, type ConnectionRecord, type ObservedConnection } from './domain/connection';
import { claimFor, remindApprovers, type Intent } from './domain/decisions';
import { enforces, pendingTimeoutStep, revocationFor, revocationLimits, withinRevocationLimits } from './domain/enforcement';
import type { RevocationLimitEvent } from './domain/outbound-event';
import { describeConnections, listTaggedEndpointServiceIds } from './aws/ec2-gateway';
import { getConnections, putConnection } from './aws/connection-store';
import { resolvePolicy, type StoredPolicy } from './aws/policy-store';
import { publishEvent } from './aws/event-publisher';
import { carryOutClaims, decideConnections, flushOutbox, managedServiceIds, planContext, type Claimed } from './gatekeeper';
import { count, countDecisions, METRIC } from './metrics';
import { membershipIn, type Membership, type OrganizationStructure } from './domain/organization';
import { usesOrganization } from './domain/policy';
import { refreshOrganization } from './organization-membership';
import { shareService, type SharingSummary } from './sharing';
import { config } from './config';
import { ConflictError, RetryableActionError } from './errors';
import { logger } from './logger';

/** The tag that puts an endpoint service under management (with RECONCILE_TAGGED_SERVICES). */
export const MANAGED_TAG = { key: 'vpce-gatekeeper:managed', value: 'true' };
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
  const serviceIds = await discoverServices();
  // Fail closed: every policy is read before anything is decided.
  const policies = new Map<string, StoredPolicy | undefined>();
  for (const serviceId of serviceIds) policies.set(serviceId, await resolvePolicy(serviceId));
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

/** The configured services (or all of the account's), plus the tagged ones when asked to. */
async function discoverServices(): Promise<string[]> {
  const ids = new Set(await managedServiceIds());
  if (config().RECONCILE_TAGGED_SERVICES) {
    for (const id of await listTaggedEndpointServiceIds(MANAGED_TAG)) ids.add(id);
  }
  return [...ids].sort();
}

async function reconcileService(summary: ServiceSummary, stored: StoredPolicy | undefined, organization: OrganizationRead | undefined): Promise<void> {
  const { serviceId } = summary;
  const observed = await describeConnections({ serviceId });
  summary.connections = observed.length;
  const outcome = await decideConnections(observed, SOURCE);
  for (const key of ['firstSeen', 'stateChanged', 'recovered', 'accepted', 'rejected'] as const) summary[key] = outcome[key];
  const stillPending = observed.filter((c) => c.state === 'pendingAcceptance').length - outcome.accepted - outcome.rejected;

  const policy = stored?.policy;
  const revocable = enforces(policy) ? observed.filter((c) => c.state === 'available') : [];
  const waiting = policy?.pendingTimeout ? observed.filter((c) => c.state === 'pendingAcceptance') : [];
  if (!stored || (!revocable.length && !waiting.length)) {
    summary.pending = stillPending;
    return;
  }
  const records = await getConnections([...revocable, ...waiting].map(({ endpointId }) => ({ serviceId, endpointId })));
  const now = new Date();

  const revocations: Claimed[] = [];
  const candidates = revocable.flatMap((connection) => {
    const membership = organization && membershipFrom(organization, connection.ownerAccountId);
    const intent = revocationFor(stored.policy, records.get(connection.endpointId), connection.ownerAccountId, now, membership);
    return intent ? [{ connection, intent }] : [];
  });
  const admitted = observed.filter((c) => isAdmitted(c.state)).length + outcome.accepted;
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
  if (summary.failed) throw new RetryableActionError(`${summary.failed} revocation(s) or timeout rejection(s) failed and will be retried`);
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
  const plan = claimFor(record, connection, intent, planContext(SOURCE));
  if (plan.kind === 'refused') {
    logger.info('not acting on a connection this run', { serviceId: connection.serviceId, endpointId: connection.endpointId, why: plan.why });
    return;
  }
  try {
    await putConnection(plan.next, record?.version);
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    logger.info('connection changed while the run looked at it; left for the next run', { endpointId: connection.endpointId });
    return;
  }
  into.push({ record: plan.next, claim: plan.claim });
}

/** Reminds approvers of a request still pending; false when another writer got there first. */
async function remind(record: ConnectionRecord): Promise<boolean> {
  const next = remindApprovers(record, planContext(SOURCE));
  try {
    await putConnection(next, record.version);
  } catch (error) {
    if (error instanceof ConflictError) return false;
    throw error;
  }
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
