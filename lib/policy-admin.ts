import { randomUUID } from 'node:crypto';
import { DEFAULT_POLICY_ID, evaluatePolicy, parsePolicy, type ConnectionRequest, type Evaluation } from './domain/policy';
import type { PolicyChangedEvent } from './domain/outbound-event';
import { getCurrentPolicy, listPolicyVersions, putPolicy, resolvePolicy, type StoredPolicy } from './aws/policy-store';
import { publishEvent } from './aws/event-publisher';
import { countAdmittedEndpoints } from './deciding';
import { isManagedService } from './managed-services';
import { ConflictError, NotFoundError, PreconditionFailedError, PreconditionRequiredError } from './errors';
import { logger } from './logger';

/** The current version of a policy; NotFoundError when it has none. */
export async function getPolicy(policyId: string): Promise<StoredPolicy> {
  const stored = await getCurrentPolicy(policyId);
  if (!stored) throw new NotFoundError(noPolicy(policyId));
  return stored;
}

/** Every version of a policy, newest first, with who wrote it and when; NotFoundError when it has none. */
export async function getPolicyHistory(policyId: string): Promise<StoredPolicy[]> {
  const versions = await listPolicyVersions(policyId);
  if (!versions.length) throw new NotFoundError(noPolicy(policyId));
  return versions;
}

/**
 * Writes a new version of a policy and announces it (policy-changed). Replacing
 * an existing policy needs the version it replaces (`ifMatch`): without one,
 * PreconditionRequiredError; with a stale one, PreconditionFailedError. An
 * invalid document is refused (ValidationError) and nothing is written.
 */
export async function replacePolicy(
  policyId: string,
  document: unknown,
  options: { actor: string; ifMatch?: number },
): Promise<{ stored: StoredPolicy; created: boolean }> {
  const policy = parsePolicy(document);
  if (options.ifMatch === undefined && (await getCurrentPolicy(policyId))) {
    throw new PreconditionRequiredError(
      `policy ${policyId} exists: send If-Match with the version you are replacing (GET /policies/${policyId})`,
    );
  }
  let stored: StoredPolicy;
  try {
    // Version 0 stands for "no policy yet", so that two first writes cannot both win.
    stored = await putPolicy(policyId, policy, { actor: options.actor, expectedVersion: options.ifMatch ?? 0 });
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    throw new PreconditionFailedError(`${error.message}: read it again and send If-Match with its current version`, { cause: error });
  }
  const event: PolicyChangedEvent = {
    eventId: randomUUID(),
    eventType: 'policy-changed',
    occurredAt: stored.createdAt,
    serviceId: policyId,
    policyId,
    version: stored.version,
    changedBy: stored.createdBy,
  };
  await publishEvent(event);
  logger.info('policy changed', { policyId, version: stored.version, changedBy: stored.createdBy });
  return { stored, created: stored.version === 1 };
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
  const stored = policyId === DEFAULT_POLICY_ID ? await getCurrentPolicy(policyId) : await resolvePolicy(policyId);
  const limited = stored?.policy.maxEndpointsPerAccount !== undefined && policyId !== DEFAULT_POLICY_ID;
  const admitted = limited ? await countAdmittedEndpoints(policyId, request.accountId) : 0;
  const evaluation = evaluatePolicy(stored?.policy, request, { now: new Date(), admittedEndpointsOfAccount: admitted });
  return { policyId: stored?.policyId ?? null, version: stored?.version ?? null, evaluation };
}

function noPolicy(policyId: string): string {
  return policyId === DEFAULT_POLICY_ID ? 'there is no default policy' : `endpoint service ${policyId} has no policy of its own`;
}
