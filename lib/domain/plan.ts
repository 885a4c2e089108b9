import { placesTaken } from './admission';
import { claimIsLive, isAdmitted, type ConnectionRecord, type ObservedConnection } from './connection';
import { enforces, pendingTimeoutStep, revocationFor, revocationLimits, withinRevocationLimits, type RevocationLimits, type Revocation } from './enforcement';
import { APPROVER_ACTION_APPLIES_TO, APPROVER_RULE, sourceOf } from './intents';
import type { Membership } from './organization';
import { evaluatePolicy, usesOrganization, type Evaluation, type Outcome, type Policy, type PolicyInForce } from './policy';
import { changeConnection, decisionInLineWithEc2, type Change, type Want } from './record-changes';
import type { AccountPlaces, ScopedFailure, ServiceSnapshot, Snapshot } from './snapshot';
import type { Failure } from '../errors';

/**
 * Where every decision is made: snapshot and intents in, what to write, what
 * to ask EC2 and what to announce out. Pure: the time and the ids are inputs.
 * The engine applies a plan; a policy plan (POST /policies/{id}/plan) is the
 * same plan made on a snapshot with the candidate policy in place of the
 * stored one, and shown instead of applied.
 */

/** Fresh values a plan needs, passed in so that planning stays pure. */
export interface PlanContext {
  now: Date;
  newId: () => string;
  leaseSeconds: number;
}

/** Why a planned change acts: the policy's verdict, a revocation, a pending timeout, an approver. */
export type Purpose = 'decide' | 'revoke' | 'time-out' | 'approve';

/** One connection in a plan: what was read, what is wanted, and the change that does it. */
export interface PlannedConnection {
  observed: ObservedConnection;
  before: ConnectionRecord | undefined;
  want: Want;
  /** Why the change acts (only when it does), and why else it would have acted. */
  purpose?: Purpose;
  wantPurpose?: Purpose;
  source: string;
  change: Change;
}

/** An account's places to write before the accepts that take them (maxEndpointsPerAccount). */
export interface PlacesChange {
  accountId: string;
  reserved: string[];
  /** The version read (0: none yet). */
  expectedVersion: number;
}

/** Enforcement found more to revoke than the policy's safety limit allows: nothing is revoked, a human decides. */
export interface RevocationLimitReached {
  policyId: string;
  admitted: number;
  limits: RevocationLimits;
  candidates: { endpointId: string; ownerAccountId: string; rule: string; reason: string }[];
}

/** Something a plan could not decide, for one endpoint or (no endpointId) for the whole service. */
export type PlanFailure = ScopedFailure;

export interface ServicePlan {
  serviceId: string;
  connections: PlannedConnection[];
  places: PlacesChange[];
  revocationLimit?: RevocationLimitReached;
  /** Accounts whose revocation rests on organization facts not read one by one in this run: read them, then plan again. */
  toConfirm: Set<string>;
  failures: PlanFailure[];
  /** The revocations enforcement found (carried out only within the safety limit). */
  revocations: { connection: ObservedConnection; revocation: Revocation }[];
  /** Admitted connections enforcement could not judge: their owner's membership could not be read (by endpoint: the error). */
  unjudged: Map<string, string>;
}

/** Plans a run: every service of the snapshot. */
export function planRun(snapshot: Snapshot, context: PlanContext): ServicePlan[] {
  return snapshot.services.map((service) => planService(service, snapshot, context));
}

/**
 * Plans one service: bring each record in line with EC2; decide each waiting
 * request by policy, accepts taking one of their account's places under
 * maxEndpointsPerAccount in the order EC2 lists them; an approver's decision;
 * then revocations, held back as a whole beyond the safety limit; then requests
 * waiting past the pending timeout. Nothing is decided from what could not be
 * read: a policy that no longer validates, EC2, an account's places.
 */
export function planService(service: ServiceSnapshot, facts: Pick<Snapshot, 'memberships' | 'confirmed'>, context: PlanContext): ServicePlan {
  const { work } = service;
  const { serviceId } = work;
  const plan: ServicePlan = { serviceId, connections: [], places: [], toConfirm: new Set(), failures: [], revocations: [], unjudged: new Map() };
  // A failure of the whole service is also each named endpoint's (a notification may not know the service).
  const failWhole = (failure: Failure) => {
    plan.failures.push({ serviceId, ...failure });
    const endpoints = new Set([...work.named.keys(), ...service.connections.map(({ endpointId }) => endpointId)]);
    for (const endpointId of endpoints) plan.failures.push({ serviceId, endpointId, ...failure });
  };
  for (const { endpointIds, failure } of service.unread) {
    if (endpointIds) for (const endpointId of endpointIds) plan.failures.push({ serviceId, endpointId, ...failure });
    else failWhole(failure);
  }
  if (service.unread.some(({ endpointIds }) => !endpointIds)) return plan;
  const { policy } = service;
  if (policy.kind === 'unreadable' && (work.decide || work.enforce || work.timeouts)) {
    // Fail closed: nothing is decided by a policy that cannot be read, and nothing is written for it.
    failWhole({ code: 'UnreadablePolicyError', message: policy.reason });
    if (!work.approve) return plan;
  }
  const rules = policy.kind === 'policy' ? policy.stored.policy : undefined;
  const decides = policy.kind === 'none' || policy.kind === 'policy';
  const wants = new Map<string, { want: Want; purpose?: Purpose }>();
  const wantOf = (endpointId: string) => {
    let entry = wants.get(endpointId);
    if (!entry) wants.set(endpointId, (entry = { want: {} }));
    return entry;
  };
  const membershipOf = (accountId: string) => facts.memberships.get(accountId);
  const waiting = service.connections.filter((c) => c.state === 'pendingAcceptance');
  const blocked = new Set<string>();

  // The policy's verdict on every waiting request.
  let accepts = 0;
  if (work.decide && decides) {
    const verdicts = decideWaiting(service, rules, waiting, membershipOf, context.now);
    plan.places = verdicts.places;
    for (const [endpointId, failure] of verdicts.failures) {
      plan.failures.push({ serviceId, endpointId, ...failure });
      blocked.add(endpointId);
    }
    // No policy because a tag names one that does not exist: held, saying so.
    const noneBecause = policy.kind === 'none' ? policy.reason : undefined;
    for (const [endpointId, verdict] of verdicts.evaluations) {
      const evaluation = noneBecause ? { ...verdict, rule: 'policy-missing', reason: `${noneBecause}; the request waits for an approver` } : verdict;
      wantOf(endpointId).want.evaluation = evaluation;
      if (evaluation.act && evaluation.outcome === 'accept') accepts++;
    }
  }

  if (work.approve) {
    const { action, reason, actor, endpointId } = work.approve;
    const entry = wantOf(endpointId);
    entry.want.action = {
      intent: { outcome: action === 'accept' ? 'accept' : 'reject', rule: APPROVER_RULE[action], reason, decidedBy: actor },
      appliesTo: APPROVER_ACTION_APPLIES_TO[action],
    };
    entry.purpose = 'approve';
  }

  // Enforcement: only on facts read now, within the safety limit.
  const { revocations, unjudged } = plan;
  if (work.enforce && enforces(rules)) {
    for (const connection of service.connections.filter((c) => c.state === 'available')) {
      const owner = connection.ownerAccountId;
      const decision = decisionInLineWithEc2(service.records.get(connection.endpointId), connection, context.now);
      const membership = membershipOf(owner);
      const revocation = revocationFor(rules, { decision }, owner, context.now, membership);
      if (!revocation) {
        if (usesOrganization(rules) && (!membership || membership.kind === 'unreadable')) {
          unjudged.set(connection.endpointId, membership?.kind === 'unreadable' ? membership.error : 'not read');
        }
        continue;
      }
      if (revocation.byOrganization && !facts.confirmed.has(owner)) {
        plan.toConfirm.add(owner);
        continue;
      }
      revocations.push({ connection, revocation });
    }
    const admitted = service.connections.filter((c) => isAdmitted(c.state)).length + accepts;
    const limits = revocationLimits(rules);
    if (withinRevocationLimits(revocations.length, admitted, limits)) {
      for (const { connection, revocation } of revocations) {
        const entry = wantOf(connection.endpointId);
        const { byOrganization: _byOrganization, ...intent } = revocation;
        entry.want.action = { intent, appliesTo: ['pending', 'available'] };
        entry.purpose = 'revoke';
      }
    } else if (policy.kind === 'policy') {
      plan.revocationLimit = {
        policyId: policy.stored.policyId,
        admitted,
        limits,
        candidates: revocations.map(({ connection, revocation }) => ({
          endpointId: connection.endpointId,
          ownerAccountId: connection.ownerAccountId,
          rule: revocation.rule,
          reason: revocation.reason,
        })),
      };
    }
  }

  // Requests waiting past the pending timeout, which the policy's verdict left waiting.
  if (work.timeouts && rules) {
    for (const connection of waiting) {
      const entry = wantOf(connection.endpointId);
      const { evaluation } = entry.want;
      if (blocked.has(connection.endpointId) || (evaluation?.act && evaluation.outcome !== 'hold')) continue;
      const record = service.records.get(connection.endpointId);
      const step = pendingTimeoutStep(
        rules,
        { state: connection.state, createdAt: record?.createdAt ?? connection.createdAt ?? context.now.toISOString(), remindedAt: record?.remindedAt },
        context.now,
      );
      if (step?.kind === 'reject') {
        entry.want.action = { intent: step.intent, appliesTo: ['pendingAcceptance'] };
        entry.purpose = 'time-out';
      } else if (step?.kind === 'remind') entry.want.remind = true;
    }
  }

  const unread = new Set(service.unread.flatMap(({ endpointIds }) => endpointIds ?? []));
  for (const observed of service.connections) {
    if (blocked.has(observed.endpointId) || unread.has(observed.endpointId)) continue;
    const before = service.records.get(observed.endpointId);
    const { want, purpose } = wants.get(observed.endpointId) ?? { want: {} };
    const source = sourceOf(work, observed.endpointId);
    const change = changeConnection(before, observed, want, { ...context, source });
    const acting = change.kind === 'act' ? (change.by === 'verdict' ? 'decide' : purpose) : undefined;
    plan.connections.push({ observed, before, want, source, change, ...(acting ? { purpose: acting } : {}), ...(purpose ? { wantPurpose: purpose } : {}) });
  }

  return plan;
}

/**
 * The same connection planned again from a newer record (a conditional write
 * lost to another writer): what was wanted stays, the record is the latest.
 */
export function replanConnection(planned: PlannedConnection, latest: ConnectionRecord | undefined, context: PlanContext): Change {
  return changeConnection(latest, planned.observed, planned.want, { ...context, source: planned.source });
}

/**
 * The policy's verdict on each waiting request. Under maxEndpointsPerAccount an
 * accept takes one of its account's places: those EC2 shows admitted and those
 * reserved for accepts under way count; when none is left, the request is
 * unmatched. The places taken are written before the accepts (`places`).
 */
function decideWaiting(
  service: ServiceSnapshot,
  rules: Policy | undefined,
  waiting: ObservedConnection[],
  membershipOf: (accountId: string) => Membership | undefined,
  now: Date,
): { evaluations: Map<string, Evaluation>; places: PlacesChange[]; failures: Map<string, Failure> } {
  const evaluations = new Map<string, Evaluation>();
  const failures = new Map<string, Failure>();
  const max = rules?.maxEndpointsPerAccount;
  /** Per account: the places taken, and whether they changed (`granted`: taken or given back). */
  const taken = new Map<string, { places: AccountPlaces; taken: Set<string>; granted: boolean }>();
  for (const connection of waiting) {
    const { endpointId, ownerAccountId: accountId } = connection;
    const evaluate = (admitted: number) =>
      evaluatePolicy(rules, { accountId, region: connection.region }, { now, admittedEndpointsOfAccount: admitted, membership: membershipOf(accountId) });
    if (max === undefined) {
      evaluations.set(endpointId, evaluate(0));
      continue;
    }
    const read = service.places.get(accountId);
    if (!read || 'unreadable' in read) {
      failures.set(endpointId, read?.unreadable ?? { code: 'NotRead', message: `the places of account ${accountId} were not read` });
      continue;
    }
    let account = taken.get(accountId);
    if (!account) taken.set(accountId, (account = { places: read, taken: placesTaken(read.reserved, read.ec2), granted: false }));
    const record = service.records.get(endpointId);
    const unlimited = evaluate(0);
    const wouldAdmit = unlimited.act && unlimited.outcome === 'accept' && !record?.decision?.acted && !claimIsLive(record?.claim, now);
    if (!wouldAdmit) {
      // A place reserved for an accept that is no longer coming (no one holds the request, the verdict changed) is given back.
      if (!claimIsLive(record?.claim, now) && account.taken.delete(endpointId)) account.granted = true;
      evaluations.set(endpointId, evaluate(placesTaken([], read.ec2).size));
    } else if (account.taken.has(endpointId)) {
      // It holds a place already (an accept that did not finish): it keeps it.
      evaluations.set(endpointId, evaluate(account.taken.size - 1));
    } else if (account.taken.size >= max) {
      evaluations.set(endpointId, evaluate(account.taken.size));
    } else {
      evaluations.set(endpointId, evaluate(account.taken.size));
      account.taken.add(endpointId);
      account.granted = true;
    }
  }
  const places = [...taken]
    .filter(([, account]) => account.granted)
    .map(([accountId, account]) => ({ accountId, reserved: [...account.taken], expectedVersion: account.places.version }));
  return { evaluations, places, failures };
}
