import type { ConnectionState } from './connection';
import type { ConnectionEvent } from './notification';

/**
 * What the engine is asked to do. Every caller speaks in intents: the
 * notification batch, the reconciler, an approver, the policy plan.
 */
export type Intent =
  /** A notification about one endpoint: record what EC2 shows, and decide it if it waits. No `serviceId`: EC2 says whose it is. */
  | { kind: 'notification'; serviceId?: string; endpointId: string; event?: ConnectionEvent }
  /** A notification naming a service and no endpoint: its requests still waiting. */
  | { kind: 'sweep'; serviceId: string }
  /** Every connection of a service, from EC2: recorded, and decided while it waits (a reconcile run). */
  | { kind: 'reconcile'; serviceId: string }
  /** Revoke what the service's policy no longer admits (enforce: true), within its safety limit. */
  | { kind: 'enforce'; serviceId: string }
  /** Reject, or remind approvers of, requests waiting longer than the policy's pendingTimeout. */
  | { kind: 'pending-timeout'; serviceId: string }
  /** An approver's decision about one connection. */
  | ApproverIntent;

/**
 * What an approver asks for: accept or reject a request still waiting
 * (pendingAcceptance), or revoke a connection already admitted (pending or
 * available). Revoking is its own intent, so that a reject that arrives after
 * someone else's accept can never cut the consumer off.
 */
export type ApproverAction = 'accept' | 'reject' | 'revoke';

export interface ApproverIntent {
  kind: 'approve';
  serviceId: string;
  endpointId: string;
  action: ApproverAction;
  reason: string;
  /** The caller's principal, from the authenticated request context. */
  actor: string;
}

/** The states each approver action applies to. */
export const APPROVER_ACTION_APPLIES_TO: Record<ApproverAction, readonly ConnectionState[]> = {
  accept: ['pendingAcceptance'],
  reject: ['pendingAcceptance'],
  revoke: ['pending', 'available'],
};

/** The rule recorded for each approver action. */
export const APPROVER_RULE: Record<ApproverAction, string> = { accept: 'approver', reject: 'approver', revoke: 'approver:revoke' };

/** The intents about one service, merged: what to read of it, and what to do. */
export interface ServiceWork {
  serviceId: string;
  /** Read every connection (reconcile, enforce). */
  all: boolean;
  /** Read the requests still waiting (sweep, pending-timeout). */
  waiting: boolean;
  /** Endpoints named by notifications, each with the events announced (undefined: a message that did not say). */
  named: Map<string, Set<ConnectionEvent | undefined>>;
  /** Decide the waiting requests it reads by policy (every intent but an approver's). */
  decide: boolean;
  enforce: boolean;
  timeouts: boolean;
  approve?: ApproverIntent;
}

/** Intents grouped by service; notifications naming an endpoint and no (single) service wait until EC2 places them. */
export function workOf(intents: readonly Intent[]): { services: Map<string, ServiceWork>; unplaced: Map<string, Set<ConnectionEvent | undefined>> } {
  const services = new Map<string, ServiceWork>();
  const unplaced = new Map<string, Set<ConnectionEvent | undefined>>();
  const of = (serviceId: string) => {
    let work = services.get(serviceId);
    if (!work) {
      work = { serviceId, all: false, waiting: false, named: new Map(), decide: false, enforce: false, timeouts: false };
      services.set(serviceId, work);
    }
    return work;
  };
  for (const intent of intents) {
    if (intent.kind === 'notification' && !intent.serviceId) {
      addEvent(unplaced, intent.endpointId, intent.event);
      continue;
    }
    const work = of(intent.serviceId as string);
    switch (intent.kind) {
      case 'notification':
        addEvent(work.named, intent.endpointId, intent.event);
        work.decide = true;
        break;
      case 'sweep':
        work.waiting = true;
        work.decide = true;
        break;
      case 'reconcile':
        work.all = true;
        work.decide = true;
        break;
      case 'enforce':
        work.all = true;
        work.enforce = true;
        break;
      case 'pending-timeout':
        work.waiting = true;
        work.timeouts = true;
        break;
      case 'approve':
        work.approve = intent;
        break;
    }
  }
  return { services, unplaced };
}

/** Where an observation of a connection came from, as its history records it. */
export function sourceOf(work: ServiceWork, endpointId: string): string {
  if (work.approve?.endpointId === endpointId) return 'api';
  const events = work.named.get(endpointId);
  if (events) return `notification:${[...events].find((event) => event !== undefined) ?? 'unknown'}`;
  return work.all || work.timeouts ? 'reconciled' : 'sweep';
}

function addEvent(map: Map<string, Set<ConnectionEvent | undefined>>, endpointId: string, event: ConnectionEvent | undefined): void {
  const events = map.get(endpointId);
  if (events) events.add(event);
  else map.set(endpointId, new Set([event]));
}
