/**
 * What subscribers of the outbound topic receive. Standalone: the records that
 * carry these events in their outbox import from here, never the other way.
 */

/** The event types on the outbound topic, also its `eventType` message attribute. */
export type OutboundEventType = 'approval-needed' | 'approval-reminder' | 'accepted' | 'rejected' | 'action-failed';

/** The decision an event reports, as the connection's record holds it. */
export interface EventDecision {
  outcome: 'accept' | 'reject' | 'hold';
  acted: boolean;
  rule: string;
  reason: string;
  decidedBy: string;
  decidedAt?: string;
}

/** What subscribers receive. `eventId` is stable across redeliveries, for deduplication. */
export interface OutboundEvent {
  eventId: string;
  eventType: OutboundEventType;
  occurredAt: string;
  /**
   * Orders one connection's events: 1 for its first event, then one more for
   * each event after it, so a later event always has a larger number and a gap
   * means an event not yet received. Publishing may reorder events (one stranded
   * in the outbox goes out later); a subscriber that keeps the last state ignores
   * an event older than one it has seen.
   */
  sequence: number;
  serviceId: string;
  endpointId: string;
  /** The consumer's account and Region. */
  ownerAccountId: string;
  region: string;
  /** Where the service lives: the provider's account and the service's Region (the spoke). */
  providerAccountId?: string;
  serviceRegion?: string;
  state: string;
  decision?: EventDecision;
  /** For approval-needed and approval-reminder: the API routes an approver calls. */
  actions?: { accept: string; reject: string };
  /** For action-failed: what EC2 said. */
  error?: { code: string; message: string };
}

/**
 * Published when a policy gets a new version. `serviceId` is the policy id
 * ('default' for the default policy), so that subscribers filter on it as on
 * the connection events.
 */
export interface PolicyChangedEvent {
  eventId: string;
  eventType: 'policy-changed';
  occurredAt: string;
  serviceId: string;
  policyId: string;
  version: number;
  changedBy: string;
}

/**
 * Published when enforcement would revoke more connections of a service than
 * the policy's safety limit allows: nothing was revoked, and a human decides.
 */
export interface RevocationLimitEvent {
  eventId: string;
  eventType: 'revocation-limit-reached';
  occurredAt: string;
  serviceId: string;
  policyId: string;
  /** Connections of the service admitted (pending or available) when the run looked. */
  admitted: number;
  limits: { maxRevocationsPerRun: number; maxRevocationPercent: number };
  /** How many connections the run would have revoked. */
  candidateCount: number;
  /** What would have been revoked, and why (the first 100, to stay within a message's size). */
  candidates: { endpointId: string; ownerAccountId: string; rule: string; reason: string }[];
}

/**
 * Published when the reconciler changed a service's allowed principals to follow
 * its policy (sharing add or sync), or withheld removals beyond the safety limit.
 */
export interface SharingChangedEvent {
  eventId: string;
  eventType: 'sharing-changed';
  occurredAt: string;
  serviceId: string;
  policyId: string;
  mode: 'add' | 'sync';
  added: string[];
  removed: string[];
  /** Removals withheld because they exceed the policy's safety limit. */
  skippedByLimit: string[];
}

/**
 * Published by a reconcile run that could not reach a spoke (its role could not be assumed, EC2
 * there failed or throttled): nothing of it was decided or revoked, and its requests wait until a
 * run reaches it again. `serviceId` is '*': it is about every service of the spoke.
 */
export interface SpokeUnreachableEvent {
  eventId: string;
  eventType: 'spoke-unreachable';
  occurredAt: string;
  serviceId: '*';
  providerAccountId: string;
  serviceRegion: string;
  error: { code: string; message: string };
  /** The spoke's managed services as last listed (none when it was never listed). */
  serviceIds: string[];
}

/** Everything published to the outbound topic. */
export type PublishedEvent = OutboundEvent | PolicyChangedEvent | RevocationLimitEvent | SharingChangedEvent | SpokeUnreachableEvent;
