import { claimIsLive, isAdmitted, type ObservedConnection } from './connection';
import type { RevocationLimits } from './enforcement';
import type { Membership } from './organization';
import type { ServicePlan } from './plan';
import { evaluatePolicy, type Outcome, type Policy, type PolicyInForce } from './policy';
import { decisionInLineWithEc2 } from './record-changes';
import type { ServiceSnapshot } from './snapshot';

/**
 * A plan as a person reads it before saving a policy (POST /policies/{id}/plan,
 * the console, `policy put`): per connection, what the engine's own plan would
 * do and why. Read off the plan; it decides nothing itself.
 */

/** What saving a candidate policy would do to one connection. */
export type Effect = 'accept' | 'reject' | 'revoke' | 'hold' | 'unreadable';

export interface PlannedChange {
  serviceId: string;
  endpointId: string;
  ownerAccountId: string;
  state: ObservedConnection['state'];
  /** What stands now: the current policy's verdict on a pending request, or what admitted a connection. */
  current: { outcome: Outcome; rule: string };
  planned: { outcome: Outcome; rule: string; reason: string };
  /** `unreadable`: facts the decision needs (the account's place in the organization) could not be read; nothing is decided. */
  effect: Effect;
}

/** Set when enforcement would find more to revoke on a service than its safety limit allows: it then revokes none. */
export interface RevocationLimitTrip extends RevocationLimits {
  serviceId: string;
  /** The connections the candidate would revoke, were it not for the limit. */
  candidates: number;
  /** The service's admitted connections, counting the pending requests accepted first. */
  admitted: number;
}

/** A plan as a person reads it: per connection what it would do, and the admitted connections it keeps. */
export interface ServicePreview {
  changes: PlannedChange[];
  unchanged: number;
  revocationLimit?: RevocationLimitTrip;
}

/** A service's plan as a person reads it: per connection what it would do, and the admitted connections it keeps. */
export interface ServicePreview {
  changes: PlannedChange[];
  unchanged: number;
  revocationLimit?: RevocationLimitTrip;
}

/** What a service's plan would do, connection by connection. */
export function previewOf(service: ServiceSnapshot, plan: ServicePlan, memberships: ReadonlyMap<string, Membership>, now: Date): ServicePreview {
  const { serviceId } = plan;
  const changes: PlannedChange[] = [];
  const today = service.today ?? (service.policy.kind === 'not-read' ? undefined : service.policy);
  const todayRules = today?.kind === 'policy' ? today.stored.policy : undefined;
  const admittedOf = new Map<string, number>();
  for (const c of service.connections) if (isAdmitted(c.state)) admittedOf.set(c.ownerAccountId, (admittedOf.get(c.ownerAccountId) ?? 0) + 1);
  const identify = ({ endpointId, ownerAccountId, state }: ObservedConnection) => ({ serviceId, endpointId, ownerAccountId, state });

  for (const planned of plan.connections) {
    const { observed, before, change, want } = planned;
    if (observed.state !== 'pendingAcceptance' || !want.evaluation) continue;
    const current = currentVerdict(today, todayRules, observed, admittedOf, memberships, now);
    if (change.kind === 'act') {
      const { claim } = change;
      const effect: Effect = planned.purpose === 'decide' ? claim.outcome : 'reject';
      changes.push({ ...identify(observed), current, planned: { outcome: claim.outcome, rule: claim.rule, reason: claim.reason }, effect });
      continue;
    }
    if (decisionInLineWithEc2(before, observed, now)?.acted || claimIsLive(before?.claim, now)) {
      changes.push({
        ...identify(observed),
        current,
        planned: { outcome: 'hold', rule: 'in-progress', reason: 'an action on this request is already under way; the candidate would not decide it again' },
        effect: 'hold',
      });
      continue;
    }
    const { evaluation } = want;
    const effect: Effect = evaluation.rule === 'organization-unreadable' ? 'unreadable' : evaluation.act && evaluation.outcome !== 'hold' ? evaluation.outcome : 'hold';
    changes.push({ ...identify(observed), current, planned: { outcome: evaluation.outcome, rule: evaluation.rule, reason: evaluation.reason }, effect });
  }

  const tripped = plan.revocationLimit;
  const { revocations } = plan;
  const changeOf = new Map(plan.connections.map((planned) => [planned.observed.endpointId, planned]));
  for (const { connection, revocation } of revocations) {
    const decision = service.records.get(connection.endpointId)?.decision;
    const planned = changeOf.get(connection.endpointId);
    const revoking = planned?.change.kind === 'act' && planned.purpose === 'revoke';
    const reason = tripped
      ? `${revocation.reason}; but ${revocations.length} revocation(s) of ${tripped.admitted} admitted connection(s) exceed the safety limit ` +
        `(${tripped.limits.maxRevocationsPerRun} per run, ${tripped.limits.maxRevocationPercent}%), so the reconciler revokes none of them and alerts approvers`
      : revoking
        ? revocation.reason
        : `${revocation.reason}; but an action on this connection is already under way, and the run leaves it to its holder`;
    changes.push({
      ...identify(connection),
      current: { outcome: decision?.outcome ?? 'accept', rule: decision?.rule ?? 'unrecorded' },
      planned: { outcome: 'reject', rule: revocation.rule, reason },
      effect: revoking ? 'revoke' : 'hold',
    });
  }
  for (const connection of service.connections) {
    const error = plan.unjudged.get(connection.endpointId);
    if (error === undefined) continue;
    const decision = service.records.get(connection.endpointId)?.decision;
    changes.push({
      ...identify(connection),
      current: { outcome: decision?.outcome ?? 'accept', rule: decision?.rule ?? 'unrecorded' },
      planned: { outcome: 'hold', rule: 'organization-unreadable', reason: `organization membership could not be read: ${error}; nothing is revoked on an unknown` },
      effect: 'unreadable',
    });
  }
  const listed = new Set(changes.map((change) => change.endpointId));
  return {
    changes,
    unchanged: service.connections.filter((c) => isAdmitted(c.state) && !listed.has(c.endpointId)).length,
    ...(tripped ? { revocationLimit: { serviceId, candidates: tripped.candidates.length, admitted: tripped.admitted, ...tripped.limits } } : {}),
  };
}

/** What the policy in force today says of a waiting request, for the plan's "now" column. */
function currentVerdict(
  today: PolicyInForce | undefined,
  rules: Policy | undefined,
  connection: ObservedConnection,
  admittedOf: ReadonlyMap<string, number>,
  memberships: ReadonlyMap<string, Membership>,
  now: Date,
): { outcome: Outcome; rule: string } {
  if (today?.kind === 'unreadable') return { outcome: 'hold', rule: 'policy-unreadable' };
  const { outcome, rule } = evaluatePolicy(
    rules,
    { accountId: connection.ownerAccountId, region: connection.region },
    { now, admittedEndpointsOfAccount: admittedOf.get(connection.ownerAccountId) ?? 0, membership: memberships.get(connection.ownerAccountId) },
  );
  return { outcome, rule };
}

/** Totals by effect, for a plan's summary. */
export function summarize(previews: ServicePreview[]): Record<Effect | 'unchanged', number> {
  const summary = { accept: 0, reject: 0, revoke: 0, hold: 0, unreadable: 0, unchanged: 0 };
  for (const preview of previews) {
    summary.unchanged += preview.unchanged;
    for (const change of preview.changes) summary[change.effect]++;
  }
  return summary;
}
