import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { DEFAULT_POLICY_ID, evaluatePolicy, parsePolicy, usesOrganization, type ConnectionRequest, type Evaluation } from './domain/policy';
import { membershipsOf } from './organization-membership';
import type { PolicyChangedEvent } from './domain/outbound-event';
import {
  getLatestPolicyVersion,
  listPolicyVersions,
  putPolicy,
  type LatestPolicyVersion,
  type PolicyVersion,
} from './aws/policy-store';
import type { Page } from './aws/cursor';
import { countAdmittedEndpoints } from './deciding';
import { isManagedService } from './managed-services';
import { publishPolicyOutbox } from './policy-outbox';
import { ConflictError, NotFoundError, PreconditionFailedError, PreconditionRequiredError } from './errors';
import type { IfMatch } from './http/request';
import { logger } from './logger';

/** How often a `*` write is tried again after another writer got in first. */
const MAX_ANY_VERSION_ATTEMPTS = 3;

/** The current version of a policy, valid or not (GET shows an invalid one with the reason); NotFoundError when it has none. */
export async function getPolicy(policyId: string): Promise<PolicyVersion> {
  const latest = await getLatestPolicyVersion(policyId);
  if (!latest) throw new NotFoundError(noPolicy(policyId));
  const { outbox: _outbox, ...version } = latest;
  return version;
}

/** A page of a policy's versions, newest first, with who wrote each and when; NotFoundError when it has none. */
export async function getPolicyHistory(policyId: string, page: { limit: number; cursor?: string }): Promise<Page<PolicyVersion>> {
  const versions = await listPolicyVersions(policyId, page);
  if (!versions.items.length && !page.cursor) throw new NotFoundError(noPolicy(policyId));
  return versions;
}

/**
 * Writes a new version of a policy and announces it (policy-changed). Replacing
 * an existing policy needs If-Match naming its current version (`"3"`) or `*`:
 * without one, PreconditionRequiredError; with one that does not match, in
 * whatever form, PreconditionFailedError. A document identical to the current
 * version writes nothing and answers that version (`created: false, changed: false`).
 * The current version is never parsed, so one that no longer validates can be
 * replaced. An invalid new document is refused (ValidationError), nothing written.
 * The event is saved with the version (its outbox) before it is published: if
 * publishing fails, the version stands and the next writer or the reconciler
 * publishes it.
 */
export async function replacePolicy(
  policyId: string,
  document: unknown,
  options: { actor: string; ifMatch?: IfMatch },
): Promise<{ stored: PolicyVersion; created: boolean; changed: boolean }> {
  const policy = parsePolicy(document);
  for (let attempt = 1; ; attempt++) {
    const current = await getLatestPolicyVersion(policyId);
    checkPrecondition(policyId, current, options.ifMatch);
    if (current?.valid && isDeepStrictEqual(current.policy, policy)) {
      if (current.outbox.length) await publishPolicyOutbox(current);
      const { outbox: _outbox, ...unchanged } = current;
      return { stored: unchanged, created: false, changed: false };
    }
    const at = new Date();
    const event: PolicyChangedEvent = {
      eventId: randomUUID(),
      eventType: 'policy-changed',
      occurredAt: at.toISOString(),
      serviceId: policyId,
      policyId,
      version: (current?.version ?? 0) + 1,
      changedBy: options.actor,
    };
    // Events a failed publish left on the version being replaced go first, in order.
    const outbox = [...(current?.outbox ?? []), event];
    try {
      const stored = await putPolicy(policyId, policy, { actor: options.actor, expectedVersion: current?.version ?? 0, at, outbox });
      await publishPolicyOutbox({ ...stored, outbox });
      logger.info('policy changed', { policyId, version: stored.version, changedBy: stored.createdBy });
      return { stored: { ...stored, valid: true }, created: stored.version === 1, changed: true };
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      if (options.ifMatch?.any && attempt < MAX_ANY_VERSION_ATTEMPTS) continue;
      throw new PreconditionFailedError(`${error.message}: read it again and send If-Match with its current version`, { cause: error });
    }
  }
}

/** RFC 9110 §13.1.1: `*` matches any current version; a list of entity tags matches when one is the current one, compared strongly. */
function checkPrecondition(policyId: string, current: LatestPolicyVersion | undefined, ifMatch: IfMatch | undefined): void {
  if (ifMatch === undefined) {
    if (current) {
      throw new PreconditionRequiredError(
        `policy ${policyId} exists: send If-Match with the version you are replacing (its ETag, GET /policies/${policyId}), or *`,
      );
    }
    return;
  }
  if (!current) throw new PreconditionFailedError(`If-Match names a version, but policy ${policyId} has none yet: send the first version without If-Match`);
  if (ifMatch.any || ifMatch.tags.includes(String(current.version))) return;
  throw new PreconditionFailedError(
    `If-Match ${ifMatch.raw} does not match policy ${policyId}'s current version, whose ETag is "${current.version}": read it again and send that`,
  );
}

/** What a policy would decide about a connection request, and why. Changes nothing. */
export interface PolicyVerdict {
  /** The policy that applies: the service's own, 'default', or null when there is none. */
  policyId: string | null;
  version: number | null;
  evaluation: Evaluation;
}

/**
 * Evaluates the policy that governs `policyId` (a service's own, else the
 * default) for a hypothetical request, counting the account's admitted
 * endpoints on the service in EC2 when the policy limits them.
 */
export async function evaluateRequest(policyId: string, request: ConnectionRequest): Promise<PolicyVerdict> {
  if (policyId !== DEFAULT_POLICY_ID && !(await isManagedService(policyId))) {
    throw new NotFoundError(`endpoint service ${policyId} is not managed by this stage`);
  }
  const own = await getLatestPolicyVersion(policyId);
  const stored = own ?? (policyId === DEFAULT_POLICY_ID ? undefined : await getLatestPolicyVersion(DEFAULT_POLICY_ID));
  if (stored && !stored.valid) {
    // What the engine does with it: decides nothing (fail closed), so the request waits.
    const evaluation: Evaluation = {
      outcome: 'hold',
      act: false,
      rule: 'policy-unreadable',
      reason: `policy ${stored.policyId} version ${stored.version} no longer validates (${stored.invalidReason}); nothing is decided until a valid version replaces it`,
    };
    return { policyId: stored.policyId, version: stored.version, evaluation };
  }
  const policy = stored?.policy;
  const limited = policy?.maxEndpointsPerAccount !== undefined && policyId !== DEFAULT_POLICY_ID;
  const admitted = limited ? await countAdmittedEndpoints(policyId, request.accountId) : 0;
  // The account's place in the organization (cached), when the policy has entries by OU or organization.
  const membership = policy && usesOrganization(policy) ? (await membershipsOf([request.accountId])).get(request.accountId) : undefined;
  const evaluation = evaluatePolicy(policy, request, { now: new Date(), admittedEndpointsOfAccount: admitted, membership });
  return { policyId: stored?.policyId ?? null, version: stored?.version ?? null, evaluation };
}

function noPolicy(policyId: string): string {
  return policyId === DEFAULT_POLICY_ID ? 'there is no default policy' : `endpoint service ${policyId} has no policy of its own`;
}
