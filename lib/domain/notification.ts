import { ENDPOINT_ID, SERVICE_ID } from './ids';
import { claimIsLive, normalizeState, type ConnectionRecord, type ConnectionState } from './connection';

export const CONNECTION_EVENTS = ['Connect', 'Accept', 'Reject', 'Delete'] as const;
export type ConnectionEvent = (typeof CONNECTION_EVENTS)[number];

/** What a notification asks us to look at. It is only a trigger: EC2 has the truth. */
export interface NotificationTarget {
  serviceIds: string[];
  endpointIds: string[];
  eventType?: ConnectionEvent;
  state?: ConnectionState;
}

// Field names seen in the wild and in AWS's own documents, compared after
// dropping case and punctuation ("VPC Endpoint ID", "vpcEndpointId", "endpoint_id").
const SERVICE_FIELDS = new Set(['serviceid', 'vpcendpointserviceid', 'endpointserviceid']);
const ENDPOINT_FIELDS = new Set(['vpcendpointid', 'endpointid', 'vpceid']);
const EVENT_FIELDS = new Set(['eventtype', 'event', 'connectionevent', 'eventname', 'type']);
const STATE_FIELDS = new Set(['state', 'endpointstate', 'vpcendpointstate', 'connectionstate', 'status']);

const SERVICE_ID_IN_TEXT = /vpce-svc-[0-9a-f]{8,17}\b/g;
const ENDPOINT_ID_IN_TEXT = /\bvpce-(?!svc-|con-)[0-9a-f]{8,17}\b/g;

/**
 * Reads an endpoint connection notification tolerantly. The exact JSON that
 * vpce.amazonaws.com publishes is not documented, so field-name variants are
 * accepted wherever they sit, and vpce ids are also picked out of any string.
 * Never throws: a message with nothing recognizable yields empty id lists.
 */
export function parseNotification(message: string): NotificationTarget {
  const found = { serviceIds: new Set<string>(), endpointIds: new Set<string>() };
  let eventType: ConnectionEvent | undefined;
  let state: ConnectionState | undefined;
  let document: unknown;
  let isJson = true;
  try {
    document = JSON.parse(message);
  } catch {
    isJson = false;
  }

  const visit = (value: unknown, key: string | undefined, depth: number): void => {
    if (depth > 8) return;
    if (typeof value === 'string') {
      const field = key?.toLowerCase().replace(/[^a-z]/g, '');
      if (field && SERVICE_FIELDS.has(field) && SERVICE_ID.test(value)) found.serviceIds.add(value);
      else if (field && ENDPOINT_FIELDS.has(field) && ENDPOINT_ID.test(value)) found.endpointIds.add(value);
      else if (field && EVENT_FIELDS.has(field)) eventType ??= toEvent(value);
      else if (field && STATE_FIELDS.has(field)) state ??= normalizeState(value);
      collectIds(value, found);
      // SNS-in-SNS or a message that is itself JSON text
      if (value.trimStart().startsWith('{')) visit(tryJson(value), undefined, depth + 1);
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) visit(item, key, depth + 1);
      return;
    }
    if (value !== null && typeof value === 'object') {
      for (const [childKey, child] of Object.entries(value)) visit(child, childKey, depth + 1);
    }
  };

  if (isJson) visit(document, undefined, 0);
  else collectIds(message, found);

  return { serviceIds: [...found.serviceIds], endpointIds: [...found.endpointIds], eventType, state };
}

function collectIds(text: string, found: { serviceIds: Set<string>; endpointIds: Set<string> }): void {
  for (const id of text.match(SERVICE_ID_IN_TEXT) ?? []) found.serviceIds.add(id);
  for (const id of text.match(ENDPOINT_ID_IN_TEXT) ?? []) found.endpointIds.add(id);
}

function toEvent(value: string): ConnectionEvent | undefined {
  return CONNECTION_EVENTS.find((event) => event.toLowerCase() === value.trim().toLowerCase());
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Whether the table's record already shows what a notification announces, so
 * that reading EC2 again would teach nothing: the Accept that follows our own
 * accept (recorded, or still being recorded under a live claim), the Connect of
 * a connection already decided or held. No record, or a claim whose lease ran
 * out (its holder may have died after EC2 acted), always sends us to EC2.
 */
export function recordReflects(record: ConnectionRecord | undefined, event: ConnectionEvent, now: Date): boolean {
  if (!record) return false;
  if (record.claim) {
    return claimIsLive(record.claim, now) && record.claim.outcome === ANNOUNCED_OUTCOME[event];
  }
  switch (event) {
    case 'Connect':
      return record.decision !== undefined || record.state !== 'pendingAcceptance';
    case 'Accept':
      return record.decision?.outcome === 'accept' && record.decision.acted;
    case 'Reject':
      return record.state === 'rejected';
    case 'Delete':
      return record.state === 'deleted';
  }
}

// The action whose effect each event announces: a live claim for it is already being recorded.
const ANNOUNCED_OUTCOME: Record<ConnectionEvent, 'accept' | 'reject' | undefined> = {
  Connect: undefined,
  Accept: 'accept',
  Reject: 'reject',
  Delete: undefined,
};

