import { isAdmitted } from './domain/connection';
import { DEFAULT_POLICY_ID, evaluatePolicy, parsePolicy, policyInForce, samePolicy, usesOrganization, type ConnectionRequest, type Evaluation, type PolicyVersion } from './domain/policy';
import type { PolicyChangedEvent } from './domain/outbound-event';
import { getLatestPolicyVersion, listPolicyVersions } from './aws/policy-store';
import { awsPorts } from './aws/ports';
import type { Page } from './aws/cursor';
import type { EnginePorts, LatestPolicyVersion } from './engine/ports';
import { writeVersioned } from './engine/versioned-write';
import { publishPolicyOutbox } from './policy-events';
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
  ports: EnginePorts = awsPorts(),
): Promise<{ stored: PolicyVersion; created: boolean; changed: boolean }> {
  const policy = parsePolicy(document);
  type Written = { stored: PolicyVersion; created: boolean; changed: boolean; outbox: PolicyChangedEvent[] };
  let written: Written | undefined;
  try {
    written = await writeVersioned<LatestPolicyVersion, Written>(
      {
        read: () => ports.policies.latest(policyId),
        write: (next, expected) =>
          ports.policies.put(policyId, next.policy as typeof policy, {
            actor: next.createdBy,
            expectedVersion: expected?.version ?? 0,
            at: new Date(next.createdAt),
            outbox: next.outbox,
          }).then(() => undefined),
      },
      await ports.policies.latest(policyId),
      (current) => {
        checkPrecondition(policyId, current, options.ifMatch);
        if (current?.valid && samePolicy(current.policy, policy)) {
          const { outbox, ...unchanged } = current;
          return { stop: { stored: unchanged, created: false, changed: false, outbox } };
        }
        const at = ports.clock.now().toISOString();
        const version = (current?.version ?? 0) + 1;
        const event: PolicyChangedEvent = {
          eventId: ports.newId(),
          eventType: 'policy-changed',
          occurredAt: at,
          serviceId: policyId,
          policyId,
          version,
          changedBy: options.actor,
        };
        // Events a failed publish left on the version being replaced go first, in order.
        const next: LatestPolicyVersion = { policyId, version, policy, createdAt: at, createdBy: options.actor, valid: true, outbox: [...(current?.outbox ?? []), event] };
        const { outbox, ...stored } = next;
        return { write: next, then: { stored, created: version === 1, changed: true, outbox } };
      },
      // `*` matches whatever is current: a lost race is tried again on the new current version.
      { attempts: options.ifMatch?.any ? MAX_ANY_VERSION_ATTEMPTS : 1, whenExhausted: 'throw' },
    );
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    throw new PreconditionFailedError(`${error.message}: read it again and send If-Match with its current version`, { cause: error });
  }
  if (!written) throw new PreconditionFailedError(`policy ${policyId} was changed by another writer: read it again`);
  const { outbox, ...result } = written;
  if (outbox.length) await publishPolicyOutbox({ policyId, version: result.stored.version, outbox }, ports);
  if (result.changed) logger.info('policy changed', { policyId, version: result.stored.version, changedBy: result.stored.createdBy });
  return result;
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
export async function evaluateRequest(policyId: string, request: ConnectionRequest, ports: EnginePorts = awsPorts()): Promise<PolicyVerdict> {
  if (policyId !== DEFAULT_POLICY_ID && !(await ports.services.isManaged(policyId))) {
    throw new NotFoundError(`endpoint service ${policyId} is not managed by this stage`);
  }
  const own = await ports.policies.latest(policyId);
  const fallback = own || policyId === DEFAULT_POLICY_ID ? undefined : await ports.policies.latest(DEFAULT_POLICY_ID);
  const inForce = policyInForce(policyId, (id) => (id === policyId ? own : fallback));
  if (inForce.kind === 'unreadable') {
    // What the engine does with it: decides nothing (fail closed), so the request waits.
    const evaluation: Evaluation = { outcome: 'hold', act: false, rule: 'policy-unreadable', reason: inForce.reason };
    return { policyId: inForce.policyId, version: inForce.version, evaluation };
  }
  const stored = inForce.kind === 'policy' ? inForce.stored : undefined;
  const policy = stored?.policy;
  const limited = policy?.maxEndpointsPerAccount !== undefined && policyId !== DEFAULT_POLICY_ID;
  const admitted = limited
    ? (await ports.ec2.forService(policyId).describe({ serviceId: policyId, ownerAccountId: request.accountId })).filter((c) => isAdmitted(c.state)).length
    : 0;
  // The account's place in the organization, read as a decision reads it, when the policy has entries by OU or organization.
  const membership = policy && usesOrganization(policy) ? (await ports.memberships.cached([request.accountId])).memberships.get(request.accountId) : undefined;
  const evaluation = evaluatePolicy(policy, request, { now: ports.clock.now(), admittedEndpointsOfAccount: admitted, membership });
  return { policyId: stored?.policyId ?? null, version: stored?.version ?? null, evaluation };
}

function noPolicy(policyId: string): string {
  return policyId === DEFAULT_POLICY_ID ? 'there is no default policy' : `endpoint service ${policyId} has no policy of its own`;
}
