import { isAdmitted, type ConnectionRecord, type ObservedConnection } from './connection';
import { enforces, revocationFor, revocationLimits, withinRevocationLimits, type RevocationLimits } from './enforcement';
import { evaluatePolicy, type Evaluation, type Outcome, type Policy } from './policy';

/** What saving a candidate policy would do to one connection. */
export type Effect = 'accept' | 'reject' | 'revoke' | 'hold';

export interface PlannedChange {
  serviceId: string;
  endpointId: string;
  ownerAccountId: string;
  state: ObservedConnection['state'];
  /** What stands now: the current policy's verdict on a pending request, or what admitted a connection. */
  current: { outcome: Outcome; rule: string };
  planned: { outcome: Outcome; rule: string; reason: string };
  effect: Effect;
}

/** Set when enforcement would find more to revoke on a service than its safety limit allows: it then revokes none. */
export interface RevocationLimitTrip extends RevocationLimits {
  serviceId: string;
  /** The connections the candidate would revoke, were it not for the limit. */
  candidates: number;
  /** The service's admitted connections, counting the pending requests the candidate would accept first. */
  admitted: number;
}

export interface ServicePlan {
  changes: PlannedChange[];
  /** Admitted connections the candidate keeps as they are. */
  unchanged: number;
  revocationLimit?: RevocationLimitTrip;
}

/** One service as the plan sees it: EC2's connections and the table's records of them. */
export interface ServiceSnapshot {
  serviceId: string;
  connections: ObservedConnection[];
  records: ReadonlyMap<string, ConnectionRecord>;
}

/**
 * What a reconcile run would do to one service's connections if `candidate`
 * replaced `current` (the policy that governs the service now, if any): the
 * pending requests it would accept, reject or hold, in the order and with the
 * per-account endpoint counts a run uses, then, when it enforces, the
 * connections it would revoke, held back as a whole when they exceed the
 * safety limit, exactly as the reconciler holds them back.
 */
export function planService(snapshot: ServiceSnapshot, current: Policy | undefined, candidate: Policy, now: Date): ServicePlan {
  const { serviceId, connections, records } = snapshot;
  const changes: PlannedChange[] = [];
  const admittedOf = countAdmittedByAccount(connections);
  const currentAdmittedOf = new Map(admittedOf);
  let accepted = 0;

  for (const connection of connections.filter((c) => c.state === 'pendingAcceptance')) {
    const request = { accountId: connection.ownerAccountId, region: connection.region };
    const record = records.get(connection.endpointId);
    const inFlight = record?.decision?.acted || (record?.claim && Date.parse(record.claim.leaseUntil) > now.getTime());
    const before = reserve(currentAdmittedOf, connection, evaluatePolicy(current, request, { now, admittedEndpointsOfAccount: currentAdmittedOf.get(request.accountId) ?? 0 }));
    const after = reserve(admittedOf, connection, evaluatePolicy(candidate, request, { now, admittedEndpointsOfAccount: admittedOf.get(request.accountId) ?? 0 }));
    if (inFlight) {
      changes.push(changeOf(connection, before, { outcome: 'hold', rule: 'in-progress', reason: 'an action on this request is already under way; the candidate would not decide it again' }, 'hold'));
      continue;
    }
    const effect: Effect = after.act && after.outcome !== 'hold' ? after.outcome : 'hold';
    if (effect === 'accept') accepted++;
    changes.push(changeOf(connection, before, after, effect));
  }

  const available = connections.filter((c) => c.state === 'available');
  const revocations = enforces(candidate)
    ? available.flatMap((connection) => {
        const intent = revocationFor(candidate, records.get(connection.endpointId), connection.ownerAccountId, now);
        return intent ? [{ connection, intent }] : [];
      })
    : [];
  const admitted = connections.filter((c) => isAdmitted(c.state)).length + accepted;
  const limits = revocationLimits(candidate);
  const tripped = !withinRevocationLimits(revocations.length, admitted, limits);
  for (const { connection, intent } of revocations) {
    const decision = records.get(connection.endpointId)?.decision;
    const current = { outcome: decision?.outcome ?? 'accept', rule: decision?.rule ?? 'unrecorded' };
    const reason = tripped
      ? `${intent.reason}; but ${revocations.length} revocation(s) of ${admitted} admitted connection(s) exceed the safety limit ` +
        `(${limits.maxRevocationsPerRun} per run, ${limits.maxRevocationPercent}%), so the reconciler revokes none of them and alerts approvers`
      : intent.reason;
    changes.push({
      ...identify(connection),
      current,
      planned: { outcome: 'reject', rule: intent.rule, reason },
      effect: tripped ? 'hold' : 'revoke',
    });
  }
  const revokedOrHeld = new Set(revocations.map(({ connection }) => connection.endpointId));
  return {
    changes,
    unchanged: connections.filter((c) => isAdmitted(c.state) && !revokedOrHeld.has(c.endpointId)).length,
    ...(tripped ? { revocationLimit: { serviceId, candidates: revocations.length, admitted, ...limits } } : {}),
  };
}

/** Totals by effect, for a plan's summary. */
export function summarize(plans: ServicePlan[]): Record<Effect | 'unchanged', number> {
  const summary = { accept: 0, reject: 0, revoke: 0, hold: 0, unchanged: 0 };
  for (const plan of plans) {
    summary.unchanged += plan.unchanged;
    for (const change of plan.changes) summary[change.effect]++;
  }
  return summary;
}

function countAdmittedByAccount(connections: ObservedConnection[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of connections) if (isAdmitted(c.state)) counts.set(c.ownerAccountId, (counts.get(c.ownerAccountId) ?? 0) + 1);
  return counts;
}

/** An accept takes a place in its account's endpoint count, as a run's claims do, so later requests of the account see it. */
function reserve(counts: Map<string, number>, connection: ObservedConnection, evaluation: Evaluation): Evaluation {
  if (evaluation.act && evaluation.outcome === 'accept') counts.set(connection.ownerAccountId, (counts.get(connection.ownerAccountId) ?? 0) + 1);
  return evaluation;
}

function changeOf(
  connection: ObservedConnection,
  before: Evaluation,
  after: Pick<Evaluation, 'outcome' | 'rule' | 'reason'>,
  effect: Effect,
): PlannedChange {
  return {
    ...identify(connection),
    current: { outcome: before.outcome, rule: before.rule },
    planned: { outcome: after.outcome, rule: after.rule, reason: after.reason },
    effect,
  };
}

function identify({ serviceId, endpointId, ownerAccountId, state }: ObservedConnection) {
  return { serviceId, endpointId, ownerAccountId, state };
}
