import type { OutboundEvent } from './outbound-event';

/** Endpoint connection states, spelled as the EC2 wire spells them. */
export const CONNECTION_STATES = [
  'pendingAcceptance',
  'pending',
  'available',
  'deleting',
  'deleted',
  'rejected',
  'failed',
  'expired',
  'partial',
] as const;

export type ConnectionState = (typeof CONNECTION_STATES)[number];

const byLowerCase = new Map<string, ConnectionState>(CONNECTION_STATES.map((state) => [state.toLowerCase(), state]));

/**
 * The API reference spells states `PendingAcceptance`, the wire `pendingAcceptance`:
 * compare case-insensitively and keep the wire spelling. Unknown states stay undefined.
 */
export function normalizeState(raw: string | undefined): ConnectionState | undefined {
  return raw === undefined ? undefined : byLowerCase.get(raw.toLowerCase());
}

/**
 * How far along its life a connection is. EC2 only ever moves a connection
 * forward: a request is accepted (pending, then available) or rejected, and any
 * endpoint is eventually deleted. Never back to an earlier step.
 */
const STEP: Record<ConnectionState, number> = {
  pendingAcceptance: 0,
  pending: 1,
  available: 2,
  partial: 2,
  rejected: 3,
  failed: 3,
  expired: 3,
  deleting: 4,
  deleted: 5,
};

/**
 * Whether EC2 showing `observed` can follow a record of `recorded`. When it
 * cannot, the observation is older than the record (read before someone else
 * wrote what they saw later), and the record's state is the later truth.
 */
export function canFollow(recorded: ConnectionState, observed: ConnectionState): boolean {
  return STEP[observed] >= STEP[recorded];
}

/** States in which the provider has admitted the consumer. */
export function isAdmitted(state: ConnectionState): boolean {
  return state === 'pending' || state === 'available';
}

/**
 * Whether a claim still holds its connection: taken for an action, and within
 * its lease. A claim whose lease ran out may belong to an invocation that died,
 * and anyone may take it over (after looking at EC2 to see whether it acted).
 */
export function claimIsLive(claim: Claim | undefined, now: Date): boolean {
  return claim?.status === 'acting' && Date.parse(claim.leaseUntil) > now.getTime();
}

/** A connection as EC2 reports it. */
export interface ObservedConnection {
  serviceId: string;
  endpointId: string;
  ownerAccountId: string;
  /** The consumer's region (cross-region PrivateLink), or the service's own. */
  region: string;
  state: ConnectionState;
  createdAt?: string;
  /** Where the service lives: the provider's account and the service's Region (the spoke EC2 was read in). */
  providerAccountId?: string;
  serviceRegion?: string;
}

/** Who decided: a policy rule, or (through the API) an approver. */
export interface Decision {
  outcome: 'accept' | 'reject' | 'hold';
  /** Whether EC2 was told to act; false for holds and for observe mode. */
  acted: boolean;
  rule: string;
  reason: string;
  decidedBy: string;
  decidedAt: string;
}

/**
 * The right to act on a connection, taken with a conditional write before EC2
 * is called, so that concurrent deliveries of one notification make one call.
 */
export interface Claim {
  outcome: 'accept' | 'reject';
  /** The state EC2 reported when the claim was taken: a change from it means EC2 acted. */
  from: ConnectionState;
  rule: string;
  reason: string;
  decidedBy: string;
  token: string;
  leaseUntil: string;
  status: 'acting' | 'failed';
  /**
   * The eventId of the accepted/rejected event this claim ends in, fixed when it
   * is taken: whoever records the outcome (this invocation, or the next one after
   * a crash) announces it under the same id, so subscribers can deduplicate.
   */
  outcomeEventId?: string;
  /**
   * The sequence of that event (or of the action-failed event, if it fails),
   * reserved when the claim is written: an outcome announced ahead of its write
   * keeps its number whoever records it, and no other event can take it.
   */
  outcomeSequence?: number;
}

export type HistoryEvent =
  | { at: string; type: 'first-seen'; state: ConnectionState; source: string }
  | { at: string; type: 'state-changed'; from: ConnectionState; to: ConnectionState; source: string }
  | ({ at: string; type: 'decision' } & Omit<Decision, 'decidedAt'>)
  | {
      at: string;
      type: 'action-failed';
      outcome: 'accept' | 'reject';
      code: string;
      message: string;
      /** Consecutive identical failures are one entry: how many, and when the first was (`at` is the last). */
      times?: number;
      firstAt?: string;
    }
  /** Consecutive reminders are one entry: how many, and when the first was (`at` is the last). */
  | { at: string; type: 'reminded'; pendingSince: string; times?: number; firstAt?: string };

/** What the table knows of one connection: its last known state, decision and history. */
export interface ConnectionRecord {
  serviceId: string;
  endpointId: string;
  /** The consumer's account and Region (the endpoint's). */
  ownerAccountId: string;
  region: string;
  /** Where the service lives: the provider's account and the service's Region (absent on records written before the fleet). */
  providerAccountId?: string;
  serviceRegion?: string;
  state: ConnectionState;
  decision?: Decision;
  claim?: Claim;
  /** When approvers were last reminded of this pending request (policy pendingTimeout: remind). */
  remindedAt?: string;
  /** Events recorded with this version but not yet published (a transactional outbox). */
  outbox?: OutboundEvent[];
  /** The `sequence` of the connection's latest event (absent on records written before events were counted: their version). */
  lastSequence?: number;
  createdAt: string;
  updatedAt: string;
  /** Incremented on every write; writes are conditional on the version they read. */
  version: number;
  /**
   * Append-only, except that a run of identical reminders or failures is counted
   * in one entry (`times`, `firstAt`): what repeats on a schedule cannot grow the
   * record towards DynamoDB's 400 KB item limit.
   */
  history: HistoryEvent[];
}
