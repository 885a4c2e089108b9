import type { ConnectionRecord } from './connection';
import type { ActionIntent } from './record-changes';
import { durationMs } from './duration';
import { factsText, type Membership } from './organization';
import { nameOf, standingOf, targetOf, usesOrganization, type AllowEntry, type Policy, type Standing } from './policy';

/** The safety limit when a policy names none: at most this many revocations per service and run... */
const DEFAULT_MAX_REVOCATIONS_PER_RUN = 10;
/** ...and at most this share (in percent) of the service's admitted connections. */
const DEFAULT_MAX_REVOCATION_PERCENT = 10;

export interface RevocationLimits {
  maxRevocationsPerRun: number;
  maxRevocationPercent: number;
}

/** The policy's revocation limits, with the defaults filled in. */
export function revocationLimits(policy: Policy): RevocationLimits {
  return {
    maxRevocationsPerRun: policy.maxRevocationsPerRun ?? DEFAULT_MAX_REVOCATIONS_PER_RUN,
    maxRevocationPercent: policy.maxRevocationPercent ?? DEFAULT_MAX_REVOCATION_PERCENT,
  };
}

/** Whether a policy revokes anything at all: it enforces, and it acts (mode auto). */
export function enforces(policy: Policy | undefined): policy is Policy {
  return policy?.enforce === true && policy.mode === 'auto';
}

/**
 * A revocation and what it rests on. `byOrganization`: the organization's facts
 * decide it (an entry by OU or organization is in play), so it may be carried
 * out only on a membership read for this account, now: never on a walk of the
 * organization, which can miss an account that moved while it went on.
 */
export type Revocation = ActionIntent & { byOrganization: boolean };

/**
 * Why an admitted connection has to be revoked under an enforcing policy, or
 * undefined while it may stay:
 * - a deny entry revokes every connection of the account, whoever admitted it;
 * - an account that is no longer allowed loses the connections the policy itself
 *   admitted: its allow entry removed or expired, or, for an entry by OU or
 *   organization, the account moved out of the OU (enforce:left-ou:<entry>), left
 *   the organization (enforce:left-organization:<entry>) or is no longer ACTIVE
 *   (enforce:suspended:<entry>). What an approver accepted by hand stays: the
 *   allow list never spoke for it.
 * - nothing is revoked on an unknown: when the organization could not be read
 *   and the policy has entries by OU or organization, the connection stays.
 * Regions and maxEndpointsPerAccount are rules for admitting new requests and
 * never revoke: narrowing them must not cut off consumers that are running.
 */
export function revocationFor(
  policy: Policy,
  record: Pick<ConnectionRecord, 'decision'> | undefined,
  accountId: string,
  now: Date,
  membership?: Membership,
): Revocation | undefined {
  const standing = standingOf(policy, accountId, now, membership);
  const byAccountDeny = standing.kind === 'denied' && standing.entry.account === accountId;
  const byOrganization = usesOrganization(policy) && !byAccountDeny;
  const revoke = (rule: string, reason: string): Revocation => ({ outcome: 'reject', rule, reason, decidedBy: 'policy', byOrganization });
  if (standing.kind === 'denied') {
    return revoke(`enforce:deny:${nameOf(standing.entry)}`, `${standing.why}, so its connection is revoked`);
  }
  if (standing.kind === 'unreadable') return undefined;
  const admittedByPolicy = record?.decision?.outcome === 'accept' && record.decision.acted && record.decision.decidedBy === 'policy';
  if (!admittedByPolicy || standing.kind === 'allowed') return undefined;
  if (standing.kind === 'expired') {
    const name = nameOf(standing.entry);
    return revoke(
      `enforce:expired:${name}`,
      `allow entry '${name}' for account ${accountId} expired at ${standing.entry.expiresAt}, so the connection it admitted is revoked`,
    );
  }
  const admittedBy = admittingEntry(policy, record.decision?.rule);
  const leaving = admittedBy && leavingRule(admittedBy, accountId, standing, membership);
  if (leaving) return revoke(leaving.rule, `${leaving.reason}, so the connection it admitted is revoked`);
  return revoke('enforce:no-longer-allowed', `account ${accountId} is no longer on the allow list, so the connection the policy admitted is revoked`);
}

/** The allow entry a decision rule such as `allow:prod` names, if the policy still has it. */
function admittingEntry(policy: Policy, rule: string | undefined): AllowEntry | undefined {
  if (!rule?.startsWith('allow:')) return undefined;
  const name = rule.slice('allow:'.length);
  return policy.allow.find((entry) => nameOf(entry) === name);
}

/** How an account left the OU or organization entry that admitted it. */
function leavingRule(
  entry: AllowEntry,
  accountId: string,
  standing: Standing,
  membership: Membership | undefined,
): { rule: string; reason: string } | undefined {
  const target = targetOf(entry);
  if (target.kind === 'account' || !membership || membership.kind === 'unreadable') return undefined;
  const name = nameOf(entry);
  const what = target.kind === 'organizationalUnit' ? `OU ${target.id}` : `organization ${target.id}`;
  if (membership.kind === 'outside') {
    return {
      rule: `enforce:left-organization:${name}`,
      reason: `account ${accountId} is no longer an account of organization ${membership.organizationId} (read at ${membership.readAt}), which ${what} ('${name}') needs`,
    };
  }
  if (standing.kind === 'inactive') {
    return {
      rule: `enforce:suspended:${name}`,
      reason: `account ${accountId} is ${membership.status} (${factsText(membership)}); only ACTIVE accounts match '${name}'`,
    };
  }
  if (target.kind === 'organizationalUnit') {
    return { rule: `enforce:left-ou:${name}`, reason: `account ${accountId} is no longer below ${what} ('${name}'): ${factsText(membership)}` };
  }
  return {
    rule: `enforce:left-organization:${name}`,
    reason: `account ${accountId} is no longer an account of ${what} ('${name}'): ${factsText(membership)}`,
  };
}

/**
 * Whether revoking `count` of a service's `admitted` connections in one run stays
 * within both limits. Beyond either, the run revokes none of them.
 */
export function withinRevocationLimits(count: number, admitted: number, limits: RevocationLimits): boolean {
  if (count === 0) return true;
  const percent = admitted === 0 ? 100 : (count / admitted) * 100;
  return count <= limits.maxRevocationsPerRun && percent <= limits.maxRevocationPercent;
}

/** What the pending timeout asks for a connection still waiting for a decision. */
export type PendingTimeoutStep = { kind: 'reject'; intent: ActionIntent } | { kind: 'remind' };

/**
 * Rejects or reminds about a request pending for longer than the policy's
 * pendingTimeout (counted from the connection's creation). A rejection needs
 * mode auto; in manual and observe mode, and with onPendingTimeout remind,
 * approvers are reminded instead, once per timeout period.
 */
export function pendingTimeoutStep(
  policy: Policy | undefined,
  record: Pick<ConnectionRecord, 'state' | 'createdAt' | 'remindedAt'>,
  now: Date,
): PendingTimeoutStep | undefined {
  if (!policy?.pendingTimeout || record.state !== 'pendingAcceptance') return undefined;
  const timeoutMs = durationMs(policy.pendingTimeout);
  if (now.getTime() - Date.parse(record.createdAt) < timeoutMs) return undefined;
  if (policy.onPendingTimeout === 'reject' && policy.mode === 'auto') {
    return {
      kind: 'reject',
      intent: {
        outcome: 'reject',
        rule: 'pendingTimeout:reject',
        reason: `pending since ${record.createdAt}, longer than the policy's pendingTimeout ${policy.pendingTimeout}; requests not decided in time are rejected`,
        decidedBy: 'policy',
      },
    };
  }
  if (record.remindedAt && now.getTime() - Date.parse(record.remindedAt) < timeoutMs) return undefined;
  return { kind: 'remind' };
}
