import { config } from './config';
import { spokeTopicArn } from './domain/spokes';
import type { ConnectionNotificationConfig, Ec2Connections, EnginePorts } from './engine/ports';
import { describeError, type Failure } from './errors';
import { hubSpoke, isSameSpoke } from './aws/spoke-clients';
import { logger } from './logger';

/** The events a managed service's notification carries: every one the gatekeeper reacts to. */
export const CONNECTION_EVENTS = ['Connect', 'Accept', 'Reject', 'Delete'] as const;

/** What wiring did to one service: the notification it created, or why it could not. */
export interface WiringOutcome {
  serviceId: string;
  topicArn: string;
  /** The events the created notification carries (those the service's notifications to the topic lacked). */
  created?: string[];
  error?: Failure;
}

/**
 * The topic a managed service's notifications go to: the stage's own inbound topic in its own
 * account and Region, else its spoke's topic (stack/spoke.yml); undefined when not configured.
 */
export function notificationTopicOf(serviceId: string, ports: Pick<EnginePorts, 'services'>): string | undefined {
  const { INBOUND_TOPIC_ARN, SPOKE_TOPIC_NAME } = config();
  const location = ports.services.locationOf?.(serviceId) ?? hubSpoke();
  if (isSameSpoke(location, hubSpoke()) || !location.accountId) return INBOUND_TOPIC_ARN;
  return SPOKE_TOPIC_NAME ? spokeTopicArn(location, SPOKE_TOPIC_NAME) : undefined;
}

/**
 * Makes sure every managed service has a connection notification to its spoke's topic for
 * Connect, Accept, Reject and Delete: one DescribeVpcEndpointConnectionNotifications per spoke
 * (every page), and one CreateVpcEndpointConnectionNotification for each service that lacks some
 * of them, carrying those. A service someone forgot to wire (or wired to another topic) is found
 * and wired; a spoke that cannot be read is left as it is (its services are reported by the run).
 * Answers only the services it created a notification for or failed to.
 */
export async function wireNotifications(serviceIds: readonly string[], ports: Pick<EnginePorts, 'ec2' | 'services'>): Promise<WiringOutcome[]> {
  const byLocation = new Map<Ec2Connections, { serviceId: string; topicArn: string }[]>();
  for (const serviceId of serviceIds) {
    const topicArn = notificationTopicOf(serviceId, ports);
    if (!topicArn) continue;
    const ec2 = ports.ec2.forService(serviceId);
    if (!ec2.connectionNotifications || !ec2.createConnectionNotification) continue;
    byLocation.set(ec2, [...(byLocation.get(ec2) ?? []), { serviceId, topicArn }]);
  }
  const outcomes: WiringOutcome[] = [];
  for (const [ec2, services] of byLocation) {
    let existing: ConnectionNotificationConfig[];
    try {
      existing = (await ec2.connectionNotifications?.()) ?? [];
    } catch (error) {
      logger.warn('could not read the connection notifications of a spoke; they are checked again next run', { serviceIds: services.map(({ serviceId }) => serviceId), error });
      continue;
    }
    for (const { serviceId, topicArn } of services) {
      const wired = new Set(existing.filter((config) => config.serviceId === serviceId && config.topicArn === topicArn).flatMap((config) => config.events));
      const missing = CONNECTION_EVENTS.filter((event) => !wired.has(event));
      if (!missing.length) continue;
      try {
        await ec2.createConnectionNotification?.(serviceId, topicArn, missing);
        logger.info('wired the connection notifications of a managed service', { serviceId, topicArn, events: missing });
        outcomes.push({ serviceId, topicArn, created: missing });
      } catch (error) {
        logger.error('could not wire the connection notifications of a managed service', { serviceId, topicArn, error });
        outcomes.push({ serviceId, topicArn, error: describeError(error) });
      }
    }
  }
  return outcomes;
}
