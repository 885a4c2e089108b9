import type { ConnectionRecord, ObservedConnection } from './domain/connection';
import { parseNotification, recordReflects, type ConnectionEvent } from './domain/notification';
import { describeConnections, FILTER_VALUES_LIMIT } from './aws/ec2-gateway';
import { getConnections } from './aws/connection-store';
import { addCounts, decideConnections, describeError, groupBy, noCounts, type Counts, type Decided, type DecisionFailure } from './deciding';
import { isManagedService, managedServiceIds } from './managed-services';
import { RetryableActionError } from './errors';
import { logger } from './logger';

/** One message taken from the notifications queue. */
export interface NotificationMessage {
  /** The queue's id for the message: what a batch item failure names. */
  messageId: string;
  /** The PrivateLink notification text (the SNS Message). */
  body: string;
}

/** What one batch came to: the messages to hand back to the queue, and what was decided. */
export interface BatchOutcome {
  /** Messages whose connections could not be decided; they go back to the queue. */
  failedMessageIds: string[];
  counts: Counts;
  /** Why: what could not be decided, for the logs. */
  failures: DecisionFailure[];
}

/**
 * The most endpoint services one message may name. A notification is about one
 * service; a message naming thousands is not one, and must not cost thousands
 * of EC2 calls.
 */
export const MAX_SERVICES_PER_MESSAGE = 10;
/** How much of an unrecognised message is logged. */
export const LOGGED_MESSAGE_CHARS = 1000;

/** One connection a batch asks about, with the messages that asked and what they announced. */
interface Wanted {
  serviceId: string;
  endpointId: string;
  messageIds: Set<string>;
  /** The events the messages announced; undefined for a message that did not say. */
  events: Set<ConnectionEvent | undefined>;
}

/**
 * Decides a batch of endpoint connection notifications as one: copies are
 * dropped in memory, the records are read in one BatchGet per 100, the
 * connections their record already reflects are skipped, EC2 is read with one
 * Describe per 200 endpoints of a service, and the engine acts with one call per
 * 100. Never throws: the messages whose connections could not be decided are
 * named in failedMessageIds, and the rest of the batch is done.
 */
export async function handleNotificationBatch(messages: NotificationMessage[]): Promise<BatchOutcome> {
  const batch = new Batch();
  for (const message of messages) batch.add(message);
  await batch.decide();
  const failedMessageIds = messages.map(({ messageId }) => messageId).filter((id) => batch.failed.has(id));
  return { failedMessageIds, counts: batch.counts, failures: batch.failures };
}

/**
 * Handles one notification on its own; throws when any of its connections could
 * not be decided. For callers that hold one message, not a batch.
 */
export async function handleNotification(message: string): Promise<Counts> {
  const { failedMessageIds, counts, failures } = await handleNotificationBatch([{ messageId: 'message', body: message }]);
  if (failedMessageIds.length) {
    const why = failures.map((failure) => `${failure.endpointId ?? failure.serviceId}: ${failure.message}`).join('; ');
    throw new RetryableActionError(`the notification could not be fully decided and will be retried (${why})`);
  }
  return counts;
}

class Batch {
  readonly counts = noCounts();
  readonly failed = new Set<string>();
  readonly failures: DecisionFailure[] = [];
  /** Connections named with their service, by endpoint id. */
  private readonly wanted = new Map<string, Wanted>();
  /** Endpoints named without one service: EC2 says whose they are. */
  private readonly unplaced = new Map<string, Set<string>>();
  /** Services whose pendingAcceptance connections messages asked to look at. */
  private readonly sweeps = new Map<string, Set<string>>();
  /** Messages that named nothing recognisable: every managed service is swept. */
  private readonly sweepAll = new Set<string>();

  add({ messageId, body }: NotificationMessage): void {
    const target = parseNotification(body);
    let serviceIds = target.serviceIds;
    if (serviceIds.length > MAX_SERVICES_PER_MESSAGE) {
      logger.warn('notification names too many endpoint services; only the first are considered', {
        messageId,
        named: serviceIds.length,
        considered: MAX_SERVICES_PER_MESSAGE,
      });
      serviceIds = serviceIds.slice(0, MAX_SERVICES_PER_MESSAGE);
    }
    const [serviceId, ...otherServices] = serviceIds;
    if (target.endpointIds.length) {
      for (const endpointId of target.endpointIds) {
        if (serviceId && !otherServices.length) {
          const entry = this.wanted.get(endpointId) ?? { serviceId, endpointId, messageIds: new Set(), events: new Set() };
          entry.messageIds.add(messageId);
          entry.events.add(target.eventType);
          this.wanted.set(endpointId, entry);
        } else {
          addTo(this.unplaced, endpointId, messageId);
        }
      }
    } else if (serviceIds.length) {
      for (const id of serviceIds) addTo(this.sweeps, id, messageId);
    } else {
      logger.warn('notification names no endpoint or service; sweeping every managed service', {
        messageId,
        rawMessage: body.length > LOGGED_MESSAGE_CHARS ? `${body.slice(0, LOGGED_MESSAGE_CHARS)}… (${body.length} characters)` : body,
      });
      this.sweepAll.add(messageId);
    }
  }

  async decide(): Promise<void> {
    await this.dropUnmanaged();
    await this.decideWanted();
    await this.decideUnplaced();
    await this.decideSweeps();
  }

  /** Connections and sweeps of services this stage does not manage are dropped: they are not ours. */
  private async dropUnmanaged(): Promise<void> {
    const serviceIds = new Set([...[...this.wanted.values()].map((entry) => entry.serviceId), ...this.sweeps.keys()]);
    for (const serviceId of serviceIds) {
      let managed: boolean;
      try {
        managed = await isManagedService(serviceId);
      } catch (error) {
        logger.error('could not tell whether a service is managed', { serviceId, error });
        this.failures.push({ serviceId, ...describeError(error) });
        this.failService(serviceId);
        managed = false;
      }
      if (managed) continue;
      logger.info('ignoring a notification about an unmanaged service', { serviceId });
      for (const [endpointId, entry] of this.wanted) if (entry.serviceId === serviceId) this.wanted.delete(endpointId);
      this.sweeps.delete(serviceId);
    }
    if (!this.sweepAll.size) return;
    try {
      for (const serviceId of await managedServiceIds()) for (const messageId of this.sweepAll) addTo(this.sweeps, serviceId, messageId);
    } catch (error) {
      logger.error('could not list the managed services', { error });
      this.failWith('*', error, this.sweepAll);
    }
  }

  /** The usual notification: an event about one endpoint of one service. */
  private async decideWanted(): Promise<void> {
    const entries = [...this.wanted.values()].filter((entry) => !this.isFailed(entry.messageIds));
    if (!entries.length) return;
    let records: Map<string, ConnectionRecord>;
    try {
      records = await getConnections(entries.map(({ serviceId, endpointId }) => ({ serviceId, endpointId })));
    } catch (error) {
      logger.error('could not read the records of a batch', { error });
      for (const entry of entries) this.failWith(entry.serviceId, error, entry.messageIds, entry.endpointId);
      return;
    }
    // Copies across batches, and the Accept that follows our own accept: the record already says so.
    const now = new Date();
    const toRead = entries.filter(
      (entry) => ![...entry.events].every((event) => event && recordReflects(records.get(entry.endpointId), event, now)),
    );
    const observed: ObservedConnection[] = [];
    for (const [serviceId, ofService] of groupBy(toRead, (entry) => entry.serviceId)) {
      for (const chunk of chunks(ofService, FILTER_VALUES_LIMIT)) {
        try {
          observed.push(...(await describeConnections({ serviceId, endpointIds: chunk.map(({ endpointId }) => endpointId) })));
        } catch (error) {
          logger.error('could not read connections from EC2; their notifications go back to the queue', { serviceId, size: chunk.length, error });
          for (const entry of chunk) this.failWith(serviceId, error, entry.messageIds, entry.endpointId);
        }
      }
    }
    const known = new Map<string, ConnectionRecord | undefined>(toRead.map(({ endpointId }) => [endpointId, records.get(endpointId)]));
    const sourceOf = ({ endpointId }: { endpointId: string }) => `notification:${firstEvent(this.wanted.get(endpointId)) ?? 'unknown'}`;
    this.take(await decideConnections(observed, { source: sourceOf, records: known }), (serviceId, endpointId) =>
      endpointId ? this.wanted.get(endpointId)?.messageIds : this.messagesOfService(serviceId),
    );
  }

  /** Endpoints named without their service (or with several): EC2 says whose they are. */
  private async decideUnplaced(): Promise<void> {
    if (!this.unplaced.size) return;
    const observed: ObservedConnection[] = [];
    for (const chunk of chunks([...this.unplaced.keys()], FILTER_VALUES_LIMIT)) {
      try {
        observed.push(...(await describeConnections({ endpointIds: chunk })));
      } catch (error) {
        logger.error('could not read connections from EC2; their notifications go back to the queue', { size: chunk.length, error });
        for (const endpointId of chunk) this.failWith('*', error, this.unplaced.get(endpointId) ?? [], endpointId);
      }
    }
    const managed: ObservedConnection[] = [];
    for (const connection of observed) {
      try {
        if (await isManagedService(connection.serviceId)) managed.push(connection);
      } catch (error) {
        logger.error('could not tell whether a service is managed', { serviceId: connection.serviceId, error });
        this.failWith(connection.serviceId, error, this.unplaced.get(connection.endpointId) ?? [], connection.endpointId);
      }
    }
    this.take(await decideConnections(managed, { source: 'notification:unknown' }), (serviceId, endpointId) =>
      endpointId
        ? this.unplaced.get(endpointId)
        : new Set(managed.filter((c) => c.serviceId === serviceId).flatMap((c) => [...(this.unplaced.get(c.endpointId) ?? [])])),
    );
  }

  /** Messages that named a service and no endpoint: that service's pendingAcceptance connections. */
  private async decideSweeps(): Promise<void> {
    for (const [serviceId, messageIds] of this.sweeps) {
      let observed: ObservedConnection[];
      try {
        observed = await describeConnections({ serviceId, states: ['pendingAcceptance'] });
      } catch (error) {
        logger.error('could not read a service\'s pending connections from EC2', { serviceId, error });
        this.failWith(serviceId, error, messageIds);
        continue;
      }
      this.take(await decideConnections(observed, { source: 'sweep' }), () => messageIds);
    }
  }

  /** Adds what the engine decided, and fails the messages behind what it could not. */
  private take(decided: Decided, messagesOf: (serviceId: string, endpointId?: string) => Iterable<string> | undefined): void {
    addCounts(this.counts, decided.counts);
    this.failures.push(...decided.failures);
    for (const failure of decided.failures) this.fail(messagesOf(failure.serviceId, failure.endpointId) ?? []);
  }

  private messagesOfService(serviceId: string): Set<string> {
    const ids = new Set<string>();
    for (const entry of this.wanted.values()) if (entry.serviceId === serviceId) for (const id of entry.messageIds) ids.add(id);
    return ids;
  }

  private failService(serviceId: string): void {
    this.fail(this.messagesOfService(serviceId));
    this.fail(this.sweeps.get(serviceId) ?? []);
  }

  private failWith(serviceId: string, error: unknown, messageIds: Iterable<string>, endpointId?: string): void {
    this.failures.push({ serviceId, ...(endpointId ? { endpointId } : {}), ...describeError(error) });
    this.fail(messageIds);
  }

  private fail(messageIds: Iterable<string>): void {
    for (const id of messageIds) this.failed.add(id);
  }

  private isFailed(messageIds: Set<string>): boolean {
    return [...messageIds].every((id) => this.failed.has(id));
  }
}

function firstEvent(entry: Wanted | undefined): ConnectionEvent | undefined {
  return entry && [...entry.events].find((event) => event !== undefined);
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (set) set.add(value);
  else map.set(key, new Set([value]));
}


function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}
