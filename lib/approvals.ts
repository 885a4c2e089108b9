import type { Claim, ConnectionRecord, ConnectionState } from './domain/connection';
import { claimFor, type Intent } from './domain/decisions';
import { describeConnections } from './aws/ec2-gateway';
import { countConnectionsByState, getConnection, listConnectionsByState, listConnectionsOfService, type Page } from './aws/connection-store';
import { carryOutClaims, planContext, type Claimed } from './deciding';
import { updateConnection } from './conditional-update';
import { isManagedService, managedServiceIds } from './managed-services';
import { ActionFailedError, ConflictError, NotFoundError } from './errors';

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
}

/** The managed endpoint services, each with its connections counted by state. */
export async function listServices(): Promise<ServiceSummary[]> {
  const serviceIds = await managedServiceIds();
  return Promise.all(serviceIds.map(async (serviceId) => ({ serviceId, connections: await countConnectionsByState(serviceId) })));
}

/** One connection's record and full history. */
export async function getConnectionView(serviceId: string, endpointId: string): Promise<ConnectionView> {
  await requireManaged(serviceId);
  const record = await getConnection(serviceId, endpointId);
  if (!record) throw new NotFoundError(`no connection ${endpointId} is known on endpoint service ${serviceId}`);
  return connectionView(record);
}

/** An approver's accept or reject of one connection. */
export interface ApproverDecision {
  serviceId: string;
  endpointId: string;
  outcome: Intent['outcome'];
  reason: string;
  /** The caller's principal, from the authenticated request context. */
  actor: string;
}

/**
 * Carries out an approver's decision: claims the connection with a conditional
 * write, asks EC2 to act, and records the approver and the reason. Throws
 * NotFoundError for a connection neither EC2 nor the table knows, ConflictError
 * when EC2's state does not allow the action or another decision got there
 * first, and ActionFailedError when EC2 refused or failed.
 */
export async function decideConnection(request: ApproverDecision): Promise<ConnectionView> {
  const { serviceId, endpointId, outcome } = request;
  await requireManaged(serviceId);
  const claimed = await claimConnection(request);
  const result = (await carryOutClaims(serviceId, [claimed], SOURCE)).get(endpointId);
  if (result?.status === 'done') return connectionView(result.record);
  if (result?.status === 'elsewhere') {
    throw new ConflictError(`connection ${endpointId} was decided elsewhere: EC2 now shows it ${result.state}`);
  }
  throw new ActionFailedError(
    `EC2 did not ${outcome} connection ${endpointId}; the failure is recorded in its history, and asking again is safe`,
  );
}

/**
 * Takes the claim on a connection for an approver. A write that loses to one
 * that only kept the record in line with EC2 (a notification arriving) is tried
 * again from fresh reads; one that loses to another decision is refused.
 */
async function claimConnection(request: ApproverDecision): Promise<Claimed> {
  const { serviceId, endpointId, outcome } = request;
  const intent: Intent = { outcome, rule: APPROVER_RULE, reason: request.reason, decidedBy: request.actor };
  // The record first, then EC2: a decision finished in between then shows in EC2's
  // state and is refused, and one claimed in between makes our write conflict.
  // The other order could act on a connection that was already decided.
  const claimed = await updateConnection<Claimed>(
    { serviceId, endpointId },
    await getConnection(serviceId, endpointId),
    async (record) => {
      const [observed] = await describeConnections({ serviceId, endpointIds: [endpointId] });
      if (!observed) {
        if (!record) throw new NotFoundError(`no connection ${endpointId} on endpoint service ${serviceId}`);
        throw new ConflictError(`connection ${endpointId} no longer exists in EC2, so it cannot be ${outcome}ed`);
      }
      const plan = claimFor(record, observed, intent, planContext(SOURCE));
      if (plan.kind === 'refused') throw new ConflictError(plan.why);
      return { write: plan.next, then: { record: plan.next, claim: plan.claim } };
    },
    // A write that lost to one that only kept the record in line with EC2 (a
    // notification arriving) is tried again; a lost decision is refused by claimFor.
    { attempts: MAX_CLAIM_ATTEMPTS, whenExhausted: 'throw', message: `connection ${endpointId} kept changing while it was being ${outcome}ed; look at it again` },
  );
  if (!claimed) throw new ConflictError(`connection ${endpointId} could not be claimed; look at it again`);
  return claimed;
}

async function requireManaged(serviceId: string): Promise<void> {
  if (!(await isManagedService(serviceId))) throw new NotFoundError(`endpoint service ${serviceId} is not managed by this stage`);
}

function viewsOf(page: Page<ConnectionRecord>): Page<ConnectionView> {
  return { items: page.items.map(connectionView), cursor: page.cursor };
}
