import type { Intent } from './intents';
import { parseNotification, type ConnectionEvent } from './notification';

/**
 * A batch of queue messages as the engine sees it: what each message asks
 * about, the intents they add up to, and, once the engine is done, which
 * messages go back to the queue. Message ids in, failed ids out.
 */

/**
 * The most endpoint services one message may name. A notification is about one
 * service; a message naming thousands is not one, and must not cost thousands
 * of EC2 calls.
 */
export const MAX_SERVICES_PER_MESSAGE = 10;

/** What one queue message asks the engine to look at. */
export interface MessageAsk {
  messageId: string;
  /** Endpoints named, with their service when the message names exactly one. */
  endpoints: { serviceId?: string; endpointId: string; event?: ConnectionEvent }[];
  /** Services named without an endpoint: their waiting requests. */
  services: string[];
  /** Nothing recognisable: every managed service's waiting requests. */
  everything: boolean;
  /** How many services the message named, when that was more than MAX_SERVICES_PER_MESSAGE (the rest are ignored). */
  servicesNamed?: number;
}

/** What a message asks, from its text. Never throws. */
export function askOf(messageId: string, body: string): MessageAsk {
  const target = parseNotification(body);
  const services = target.serviceIds.slice(0, MAX_SERVICES_PER_MESSAGE);
  const ask: MessageAsk = {
    messageId,
    endpoints: [],
    services: [],
    everything: false,
    ...(target.serviceIds.length > MAX_SERVICES_PER_MESSAGE ? { servicesNamed: target.serviceIds.length } : {}),
  };
  const [only] = services.length === 1 ? services : [];
  if (target.endpointIds.length) {
    for (const endpointId of target.endpointIds) ask.endpoints.push({ ...(only ? { serviceId: only } : {}), endpointId, ...(target.eventType ? { event: target.eventType } : {}) });
  } else if (services.length) ask.services = services;
  else ask.everything = true;
  return ask;
}

/** The intents a batch's messages ask for; messages that name nothing sweep `managedServiceIds`. */
export function intentsOf(asks: readonly MessageAsk[], managedServiceIds: readonly string[]): Intent[] {
  const intents: Intent[] = [];
  for (const ask of asks) {
    for (const { serviceId, endpointId, event } of ask.endpoints) intents.push({ kind: 'notification', ...(serviceId ? { serviceId } : {}), endpointId, ...(event ? { event } : {}) });
    for (const serviceId of ask.services) intents.push({ kind: 'sweep', serviceId });
    if (ask.everything) for (const serviceId of managedServiceIds) intents.push({ kind: 'sweep', serviceId });
  }
  return intents;
}

/**
 * A batch's bookkeeping, as middy's sqs-partial-batch-failure keeps it: the
 * messages whose connections could not be decided, to hand back to the queue.
 * A failure of an endpoint fails every message that named it; a failure of a
 * whole service, every message about that service; any failure, a message that
 * named nothing (it swept everything).
 */
export function failedMessageIds(asks: readonly MessageAsk[], failures: readonly { serviceId: string; endpointId?: string }[]): string[] {
  const failedEndpoints = new Set(failures.flatMap(({ endpointId }) => (endpointId ? [endpointId] : [])));
  const failedServices = new Set(failures.filter(({ endpointId }) => !endpointId).map(({ serviceId }) => serviceId));
  const touchedServices = new Set(failures.map(({ serviceId }) => serviceId));
  return asks
    .filter(
      (ask) =>
        (ask.everything && failures.length > 0) ||
        ask.services.some((serviceId) => touchedServices.has(serviceId) || failedServices.has('*')) ||
        ask.endpoints.some(({ serviceId, endpointId }) => failedEndpoints.has(endpointId) || (serviceId !== undefined && failedServices.has(serviceId))),
    )
    .map(({ messageId }) => messageId);
}
