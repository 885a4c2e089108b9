import type { Claim, ConnectionRecord, ConnectionState } from './domain/connection';
import { APPROVER_ACTION_APPLIES_TO, type ApproverAction, type ApproverIntent } from './domain/intents';
import { getConnection, getConnectionWithHistory, listConnectionsByState, listConnectionsOfService, type ListedConnection, type Page } from './aws/connection-store';
import { countConnectionsByState } from './aws/connection-counts';
import { awsPorts } from './aws/ports';
import { runEngine } from './engine/engine';
import type { EnginePorts } from './engine/ports';
import { DEFAULT_POLICY_ID, isPolicyName, policyInForce } from './domain/policy';
import { ActionFailedError, ConflictError, EC2ThrottledError, isThrottling, NotFoundError, type Failure } from './errors';

/** Fresh reads and a new claim after a write lost to a concurrent one. */
const MAX_CLAIM_ATTEMPTS = 3;

/** A connection as the API shows it: its record without the internal bookkeeping (version, outbox, claim token). */
export type ConnectionView = Pick<
  ConnectionRecord,
  'serviceId' | 'endpointId' | 'ownerAccountId' | 'region' | 'providerAccountId' | 'serviceRegion' | 'state' | 'decision' | 'createdAt' | 'updatedAt' | 'history'
> & {
  /** An action claimed and not yet finished, or one that failed and may be asked for again. */
  pendingAction?: Pick<Claim, 'outcome' | 'decidedBy' | 'reason' | 'status' | 'leaseUntil'>;
};

/** What the API shows of a record (a list's entry holds just enough of it). */
export function connectionView(record: ListedConnection): ConnectionView {
  const { serviceId, endpointId, ownerAccountId, region, providerAccountId, serviceRegion, state, decision, claim, createdAt, updatedAt, history } = record;
  return {
    serviceId,
    endpointId,
    ownerAccountId,
    region,
    providerAccountId,
    serviceRegion,
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
 * The approver's queue: connections in one state, across every service (the
 * byStateShard index's partitions, merged) or of one service (its partitions). With
 * `providerAccountId` or `serviceRegion`, only the connections of the services
 * living there: a page then holds those of the `limit` read, and may hold fewer,
 * or none, before its cursor.
 */
export async function listConnections(query: {
  state: ConnectionState;
  serviceId?: string;
  providerAccountId?: string;
  serviceRegion?: string;
  limit: number;
  cursor?: string;
}): Promise<Page<ConnectionView>> {
  const page = query.serviceId ? await listServiceConnections(query.serviceId, query) : viewsOf(await listConnectionsByState(query.state, query));
  const { providerAccountId, serviceRegion } = query;
  if (providerAccountId === undefined && serviceRegion === undefined) return page;
  const here = (view: ConnectionView) =>
    (providerAccountId === undefined || view.providerAccountId === providerAccountId) && (serviceRegion === undefined || view.serviceRegion === serviceRegion);
  return { ...page, items: page.items.filter(here) };
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
  /** Where it lives: the provider's account and the service's Region (the spoke), when known. */
  providerAccountId?: string;
  serviceRegion?: string;
  /** How many of its connections the table holds in each state; states with none are left out. */
  connections: Partial<Record<ConnectionState, number>>;
  /** The policy that governs it (its own, else the default), and whether that version still validates; null: none, every request is held. */
  policy: { policyId: string; version: number; valid: boolean } | null;
}

/** The managed endpoint services, each with its connections counted by state and the policy that governs it. */
export async function listServices(ports: Pick<EnginePorts, 'services' | 'policies'> = awsPorts()): Promise<ServiceSummary[]> {
  const serviceIds = await ports.services.ids();
  const fallback = await ports.policies.latest(DEFAULT_POLICY_ID);
  // Each service's vpce-gatekeeper:policy tag, and each named policy a tag names, read once.
  const { named: tags, unread } = (await ports.services.policyTagsOf?.(serviceIds)) ?? { named: new Map<string, string>(), unread: new Map<string, unknown>() };
  // A tag that could not be read: which policy governs the service is not known (503 when EC2 throttled).
  const [unreadTag] = unread.values();
  if (unread.size) throw unreadTag instanceof Error ? unreadTag : new Error(String(unreadTag));
  const named = new Map(await Promise.all([...new Set(tags.values())].filter(isPolicyName).map(async (name) => [name, await ports.policies.latest(name)] as const)));
  const counts = await countConnectionsByState(serviceIds);
  return Promise.all(
    serviceIds.map(async (serviceId) => {
      const own = await ports.policies.latest(serviceId);
      const inForce = policyInForce(serviceId, (policyId) => (policyId === serviceId ? own : policyId === DEFAULT_POLICY_ID ? fallback : named.get(policyId)), tags.get(serviceId));
      const policy =
        inForce.kind === 'none'
          ? null
          : inForce.kind === 'policy'
            ? { policyId: inForce.stored.policyId, version: inForce.stored.version, valid: true }
            : { policyId: inForce.policyId, version: inForce.version, valid: false };
      const location = ports.services.locationOf?.(serviceId);
      const where = location?.accountId ? { providerAccountId: location.accountId, serviceRegion: location.region } : {};
      return { serviceId, ...where, connections: counts.get(serviceId) ?? {}, policy };
    }),
  );
}

/** One connection's record and full history. */
export async function getConnectionView(serviceId: string, endpointId: string): Promise<ConnectionView> {
  await requireManaged(serviceId);
  const record = await getConnectionWithHistory(serviceId, endpointId);
  if (!record) throw new NotFoundError(`no connection ${endpointId} is known on endpoint service ${serviceId}`);
  return connectionView(record);
}

export type { ApproverAction };

/** An approver's decision about one connection. */
export type ApproverDecision = Omit<ApproverIntent, 'kind'>;

/**
 * The one way an approver decides a connection (the API, and anything else that
 * speaks for an approver): the engine claims it with a conditional write, asks
 * EC2 to act, and records the approver and the reason. Throws NotFoundError for
 * a connection neither EC2 nor the table knows, ConflictError (saying who
 * decided what, and when) when the connection is not in a state the action
 * applies to or another decision got there first, ActionFailedError when EC2
 * refused or failed, and EC2ThrottledError when EC2 throttled the call.
 */
export async function decideConnection(request: ApproverDecision, ports: EnginePorts = awsPorts()): Promise<ConnectionView> {
  const { serviceId, endpointId, action } = request;
  await requireManaged(serviceId, ports);
  const conflicts = { attempts: MAX_CLAIM_ATTEMPTS, whenExhausted: 'throw', message: `connection ${endpointId} kept changing while it was being decided; look at it again` } as const;
  const run = await runEngine([{ kind: 'approve', ...request }], ports, { conflicts });
  const outcome = run.services.find((service) => service.serviceId === serviceId)?.approval;
  switch (outcome?.kind) {
    case 'done':
      return connectionView(outcome.record);
    case 'elsewhere':
      throw new ConflictError(`connection ${endpointId} was decided elsewhere: EC2 now shows it ${outcome.state}${decidedBy(outcome.record)}`);
    case 'failed':
      if (isThrottling(outcome.failure)) {
        throw new EC2ThrottledError(`EC2 throttled the ${action} of connection ${endpointId}; the claim is released, and asking again shortly is safe`);
      }
      throw new ActionFailedError(
        `EC2 did not ${action} connection ${endpointId} (${outcome.failure.code}); the failure is recorded in its history, and asking again is safe`,
      );
    case 'refused':
      if (outcome.refusal.kind === 'claimed') {
        const { claim } = outcome.refusal;
        throw new ConflictError(
          `connection ${endpointId} is being ${claim.outcome}ed by ${claim.decidedBy} (under way until ${claim.leaseUntil}); look at it again shortly`,
        );
      }
      // Read again to say who decided: the record read before EC2 may predate that decision.
      throw notApplicable(action, endpointId, outcome.refusal.state, await ports.records.get(serviceId, endpointId));
    case 'missing':
      if (!outcome.record) throw new NotFoundError(`no connection ${endpointId} on endpoint service ${serviceId}`);
      throw new ConflictError(`connection ${endpointId} no longer exists in EC2, so it cannot be ${action === 'revoke' ? 'revok' : action}ed`);
    case 'unread':
      if (outcome.from === 'table') throw new Error(`the record of connection ${endpointId} could not be read or written (${outcome.failure.code})`);
      throw ec2Failure(outcome.failure, `EC2 could not be read before the ${action} of connection ${endpointId}; nothing was changed`);
    case 'conflict':
      throw outcome.error;
    case undefined:
      throw new ConflictError(`connection ${endpointId} could not be claimed; look at it again`);
  }
}

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
  if (action === 'reject' && APPROVER_ACTION_APPLIES_TO.revoke.includes(state)) {
    return new ConflictError(
      `connection ${endpointId} is already admitted (${state})${who}; reject applies only to a request still waiting: to cut it off, POST …/revoke`,
    );
  }
  return new ConflictError(`connection ${endpointId} is ${state}${who}, so it cannot be ${action === 'revoke' ? 'revok' : action}ed`);
}

/** A failed EC2 read as the API answers it: 503 when throttled, else 502. */
function ec2Failure(failure: Failure, message: string): Error {
  return isThrottling(failure) ? new EC2ThrottledError(message) : new ActionFailedError(message);
}

async function requireManaged(serviceId: string, ports: Pick<EnginePorts, 'services'> = awsPorts()): Promise<void> {
  if (!(await ports.services.isManaged(serviceId))) throw new NotFoundError(`endpoint service ${serviceId} is not managed by this stage`);
}

function viewsOf(page: Page<ListedConnection>): Page<ConnectionView> {
  return { items: page.items.map(connectionView), cursor: page.cursor };
}
