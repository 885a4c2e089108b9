import { claimIsLive, type Claim, type ConnectionRecord, type ConnectionState, type ObservedConnection } from './domain/connection';
import { claimFor, type Intent } from './domain/decisions';
import { describeConnections } from './aws/ec2-gateway';
import { countConnectionsByState, getConnection, listConnectionsByState, listConnectionsOfService, type Page } from './aws/connection-store';
import { carryOutClaims, planContext, type Claimed } from './deciding';
import { updateConnection } from './conditional-update';
import { isManagedService, managedServiceIds } from './managed-services';
import { getLatestPolicyVersion } from './aws/policy-store';
import { DEFAULT_POLICY_ID } from './domain/policy';
import { ActionFailedError, ConflictError, EC2ThrottledError, NotFoundError } from './errors';

/** The history's source for what an approver's request observed and did. */
const SOURCE = 'api';
/** The rule recorded for a decision an approver made. */
const APPROVER_RULE = 'approver';
/** Fresh reads and a new claim after a write lost to a concurrent one. */
const MAX_CLAIM_ATTEMPTS = 3;

/** A connection as the API shows it: its record without the internal bookkeeping (version, outbox, claim token). */
export type ConnectionView = Pick<
  ConnectionRecord,
  'serviceId' | 'endpointId' | 'ownerAccountId' | 'region' | 'state' | 'decision' | 'createdAt' | 'updatedAt' | 'history'
> & {
  /** An action claimed and not yet finished, or one that failed and may be asked for again. */
  pendingAction?: Pick<Claim, 'outcome' | 'decidedBy' | 'reason' | 'status' | 'leaseUntil'>;
};

/** What the API shows of a record. */
export function connectionView(record: ConnectionRecord): ConnectionView {
  const { serviceId, endpointId, ownerAccountId, region, state, decision, claim, createdAt, updatedAt, history } = record;
  return {
    serviceId,
    endpointId,
    ownerAccountId,
    region,
    state,
    decision,
    pendingAction: claim && {
      outcome: claim.outcome,
      decidedBy: claim.decidedBy,
      reason: claim.reason,
      status: claim.status,
      leaseUntil: claim.leaseUntil,
    },
    createdAt,
    updatedAt,
    history,
  };
}

/**
 * The approver's queue: connections in one state, across every service (a Query
 * on the byState index) or of one service (a Query on its partition).
 */
export async function listConnections(query: {
  state: ConnectionState;
  serviceId?: string;
  limit: number;
  cursor?: string;
}): Promise<Page<ConnectionView>> {
  if (query.serviceId) return listServiceConnections(query.serviceId, query);
  return viewsOf(await listConnectionsByState(query.state, query));
}

/** The connections of one managed service, in every state or in one. */
export async function listServiceConnections(
  serviceId: string,
  query: { state?: ConnectionState; limit: number; cursor?: string },
): Promise<Page<ConnectionView>> {
  await requireManaged(serviceId);
  return viewsOf(await listConnectionsOfService(serviceId, query));
}

export interface ServiceSummary {
  serviceId: string;
  /** How many of its connections the table holds in each state; states with none are left out. */
  connections: Partial<Record<ConnectionState, number>>;
  /** The policy that governs it (its own, else the default), and whether that version still validates; null: none, every request is held. */
  policy: { policyId: string; version: number; valid: boolean } | null;
}

/** The managed endpoint services, each with its connections counted by state and the policy that governs it. */
export async function listServices(): Promise<ServiceSummary[]> {
  const serviceIds = await managedServiceIds();
  const fallback = await getLatestPolicyVersion(DEFAULT_POLICY_ID);
  return Promise.all(
    serviceIds.map(async (serviceId) => {
      const governing = (await getLatestPolicyVersion(serviceId)) ?? fallback;
      return {
        serviceId,
        connections: await countConnectionsByState(serviceId),
        policy: governing ? { policyId: governing.policyId, version: governing.version, valid: governing.valid } : null,
      };
    }),
  );
}

/** One connection's record and full history. */
export async function getConnectionView(serviceId: string, endpointId: string): Promise<ConnectionView> {
  await requireManaged(serviceId);
  const record = await getConnection(serviceId, endpointId);
  if (!record) throw new NotFoundError(`no connection ${endpointId} is known on endpoint service ${serviceId}`);
  return connectionView(record);
}

/**
 * What an approver asks for: accept or reject a request still waiting
 * (pendingAcceptance), or revoke a connection already admitted (pending or
 * available). Revoking is its own intent, so that a reject that arrives after
 * someone else's accept can never cut the consumer off.
 */
export type ApproverAction = 'accept' | 'reject' | 'revoke';

/** An approver's decision about one connection. */
export interface ApproverDecision {
  serviceId: string;
  endpointId: string;
  action: ApproverAction;
  reason: string;
  /** The caller's principal, from the authenticated request context. */
  actor: string;
}

/** The states each approver action applies to. */
const APPLIES_TO: Record<ApproverAction, readonly ConnectionState[]> = {
  accept: ['pendingAcceptance'],
  reject: ['pendingAcceptance'],
  revoke: ['pending', 'available'],
};

/** The rule recorded for each approver action. */
const RULE_OF: Record<ApproverAction, string> = { accept: APPROVER_RULE, reject: APPROVER_RULE, revoke: `${APPROVER_RULE}:revoke` };

/**
 * Carries out an approver's decision: claims the connection with a conditional
 * write, asks EC2 to act, and records the approver and the reason. Throws
 * NotFoundError for a connection neither EC2 nor the table knows, ConflictError
 * (saying who decided what, and when) when the connection is not in a state the
 * action applies to or another decision got there first, ActionFailedError when
 * EC2 refused or failed, and EC2ThrottledError when EC2 throttled the call.
 */
export async function decideConnection(request: ApproverDecision): Promise<ConnectionView> {
  const { serviceId, endpointId, action } = request;
  await requireManaged(serviceId);
  const claimed = await claimConnection(request);
  const result = (await carryOutClaims(serviceId, [claimed], SOURCE)).get(endpointId);
  if (result?.status === 'done') return connectionView(result.record);
  if (result?.status === 'elsewhere') {
    throw new ConflictError(`connection ${endpointId} was decided elsewhere: EC2 now shows it ${result.state}${decidedBy(result.record)}`);
  }
  const failure = result?.status === 'failed' ? result.failure : { code: 'Unknown', message: 'no result' };
  if (THROTTLING.has(failure.code)) {
    throw new EC2ThrottledError(`EC2 throttled the ${action} of connection ${endpointId}; the claim is released, and asking again shortly is safe`);
  }
  throw new ActionFailedError(
    `EC2 did not ${action} connection ${endpointId} (${failure.code}); the failure is recorded in its history, and asking again is safe`,
  );
}

/** EC2's error codes for a request refused by its rate limits. */
const THROTTLING = new Set(['RequestLimitExceeded', 'Throttling', 'ThrottlingException']);

/** " (accepted by X at T)": who decided a connection, when the record says so. */
function decidedBy(record: ConnectionRecord | undefined): string {
  const claim = record?.claim;
  if (claim?.status === 'acting') return ` (being ${claim.outcome}ed by ${claim.decidedBy})`;
  const decision = record?.decision;
  if (!decision || !decision.acted) return '';
  return ` (${decision.outcome}ed by ${decision.decidedBy} at ${decision.decidedAt})`;
}

/** Why an action does not apply to a connection in this state, saying who decided it and what to do instead. */
function notApplicable(action: ApproverAction, endpointId: string, state: ConnectionState, record: ConnectionRecord | undefined): ConflictError {
  const who = decidedBy(record);
  if (action === 'reject' && APPLIES_TO.revoke.includes(state)) {
    return new ConflictError(
      `connection ${endpointId} is already admitted (${state})${who}; reject applies only to a request still waiting: to cut it off, POST …/revoke`,
    );
  }
  return new ConflictError(`connection ${endpointId} is ${state}${who}, so it cannot be ${action === 'revoke' ? 'revok' : action}ed`);
}

/**
 * Takes the claim on a connection for an approver. A write that loses to one
 * that only kept the record in line with EC2 (a notification arriving) is tried
 * again from fresh reads; one that loses to another decision is refused.
 */
async function claimConnection(request: ApproverDecision): Promise<Claimed> {
  const { serviceId, endpointId, action } = request;
  const intent: Intent = {
    outcome: action === 'accept' ? 'accept' : 'reject',
    rule: RULE_OF[action],
    reason: request.reason,
    decidedBy: request.actor,
  };
  // The record first, then EC2: a decision finished in between then shows in EC2's
  // state and is refused, and one claimed in between makes our write conflict.
  // The other order could act on a connection that was already decided.
  const claimed = await updateConnection<Claimed>(
    { serviceId, endpointId },
    await getConnection(serviceId, endpointId),
    async (record) => {
      let observed: ObservedConnection | undefined;
      try {
        [observed] = await describeConnections({ serviceId, endpointIds: [endpointId] });
      } catch (error) {
        throw ec2Failure(error, `EC2 could not be read before the ${action} of connection ${endpointId}; nothing was changed`);
      }
      if (!observed) {
        if (!record) throw new NotFoundError(`no connection ${endpointId} on endpoint service ${serviceId}`);
        throw new ConflictError(`connection ${endpointId} no longer exists in EC2, so it cannot be ${action === 'revoke' ? 'revok' : action}ed`);
      }
      // Read again to say who decided: the record read before EC2 may predate that decision.
      if (!APPLIES_TO[action].includes(observed.state)) {
        throw notApplicable(action, endpointId, observed.state, await getConnection(serviceId, endpointId));
      }
      if (claimIsLive(record?.claim, new Date()) && record?.claim) {
        const { claim } = record;
        throw new ConflictError(
          `connection ${endpointId} is being ${claim.outcome}ed by ${claim.decidedBy} (under way until ${claim.leaseUntil}); look at it again shortly`,
        );
      }
      const plan = claimFor(record, observed, intent, planContext(SOURCE));
      if (plan.kind === 'refused') throw new ConflictError(plan.why);
      return { write: plan.next, then: { record: plan.next, claim: plan.claim } };
    },
    // A write that lost to one that only kept the record in line with EC2 (a
    // notification arriving) is tried again; a lost decision is refused above.
    { attempts: MAX_CLAIM_ATTEMPTS, whenExhausted: 'throw', message: `connection ${endpointId} kept changing while it was being decided; look at it again` },
  );
  if (!claimed) throw new ConflictError(`connection ${endpointId} could not be claimed; look at it again`);
  return claimed;
}

/** A failed EC2 read as the API answers it: 503 when throttled, else 502. */
function ec2Failure(error: unknown, message: string): Error {
  const code = error instanceof Error ? error.name : 'Unknown';
  return THROTTLING.has(code) ? new EC2ThrottledError(message, { cause: error }) : new ActionFailedError(message, { cause: error });
}

async function requireManaged(serviceId: string): Promise<void> {
  if (!(await isManagedService(serviceId))) throw new NotFoundError(`endpoint service ${serviceId} is not managed by this stage`);
}

function viewsOf(page: Page<ConnectionRecord>): Page<ConnectionView> {
  return { items: page.items.map(connectionView), cursor: page.cursor };
}
