import { z } from 'zod';
import { NotFoundError } from '../../lib/errors';
import { ACCOUNT_ID, ACCOUNT_ID_MESSAGE, REGION, REGION_MESSAGE } from '../../lib/domain/ids';
import type { CallLog } from '../aws/call-log';
import type { EndpointConnection, PrivateLinkSimulator } from '../aws/ec2-simulator';
import { type Faults, type FaultSettings, type FaultsInForce, faultSettingsSchema } from '../aws/faults';
import type { DynamoUsage } from '../aws/dynamo';
import { parseJsonBody } from '../http-io';
import type { ScheduledFunction } from '../lambda/scheduled-function';
import type { LocalQueue, LocalSqs } from '../aws/sqs';
import type { InboundSns } from '../aws/sns-inbound';
import type { EventSourceMapping } from '../lambda/event-source-mapping';
import { redriveDeadLetters } from '../aws/dlq-redrive';
import type { OutboundSns } from '../aws/sns-outbound';
import type { OrganizationPlane } from '../aws/organization-plane';
import type { LocalSts } from '../aws/sts-api';
import { LOCAL_LOCATION } from '../aws/locations';
import { organizationRoutes } from './organization-routes';
import { slackRoutes, type SlackPlane } from './slack-routes';
import type { LocalSsm } from '../aws/ssm';
import { invoke, ok, type JsonReply, type Route } from './router';

/** Everything the routes act on. */
export interface ControlPlane {
  simulator: PrivateLinkSimulator;
  inbound: InboundSns;
  outbound: OutboundSns;
  faults: Faults;
  /** Replaces the faults in force (POST /local/faults) and tells the simulators that need telling. */
  setFaults(settings: FaultSettings): Promise<FaultsInForce>;
  calls: CallLog;
  /** Where things are, for GET /local/health. */
  info: Record<string, string>;
  /** Back to an empty simulator and table, with the policies reloaded. */
  reset(): Promise<void>;
  /** The reconciler, on its schedule and on POST /local/reconcile. */
  reconciler: ScheduledFunction;
  /** The account's queues, answered over the SQS protocol at SQS_PATH. */
  sqs: LocalSqs;
  /** Where the inbound topic delivers. */
  notificationQueue: LocalQueue;
  /** Where the notification queue moves a message after maxReceiveCount receives. */
  deadLetterQueue: LocalQueue;
  /** The notification function's event source mapping on the notification queue. */
  notificationSource: EventSourceMapping;
  /** DynamoDB requests received since the stack started, by operation, and the units and throttling they met. */
  dynamoUsage(): Promise<DynamoUsage>;
  /** The AWS Organization and its API. */
  organization: OrganizationPlane;
  /** STS: the Organizations role and the spokes' roles. */
  sts: LocalSts;
  /** SSM Parameter Store, holding the Slack app's secrets. */
  ssm: LocalSsm;
  /** The Slack simulator; absent with LOCAL_SLACK=off. */
  slack?: SlackPlane;
}

const createServiceBody = z.strictObject({
  serviceId: z.string().regex(/^vpce-svc-[0-9a-f]{17}$/, 'must be vpce-svc- followed by 17 lowercase hex digits').optional(),
  acceptanceRequired: z.boolean().default(true),
  /** Who may create an endpoint to it (EC2's allowed principals); anyone by default. */
  allowedPrincipals: z.array(z.string()).optional(),
  /** The service's tags, key to value: vpce-gatekeeper:managed=true manages it when tagged services are, and in a spoke lets the hub's role act on it. */
  tags: z.record(z.string().min(1).max(128), z.string().max(256)).optional(),
  /** The provider's account and the service's Region: the local stack's own unless told. */
  accountId: z.string().regex(ACCOUNT_ID, ACCOUNT_ID_MESSAGE).default(LOCAL_LOCATION.accountId),
  region: z.string().regex(REGION, REGION_MESSAGE).default(LOCAL_LOCATION.region),
  /**
   * Whether it has a connection notification (for every event) to its spoke's topic, as the
   * services of a deployed stage's serviceIds do. Default true; a service outside every spoke has none.
   */
  connectionNotification: z.boolean().default(true),
});

const createEndpointBody = z.strictObject({
  ownerAccountId: z.string().regex(ACCOUNT_ID, ACCOUNT_ID_MESSAGE),
  /** The consumer's Region (cross-Region PrivateLink): the service's own unless told. */
  region: z.string().regex(REGION, REGION_MESSAGE).optional(),
  /** For scale tests: this many endpoints of the same owner at once. */
  count: z.int('must be a whole number').min(1, 'must be at least 1').max(10_000, 'must be at most 10000').optional(),
});

const redriveBody = z.strictObject({ maxNumberOfMessagesPerSecond: z.int().min(1).max(500).optional() });

const notificationBody = z.strictObject({
  message: z.string(),
  /** The inbound topic to publish to: the stack's own unless told (a spoke's, GET /local/health lists them). */
  topicArn: z.string().optional(),
});
const emptyBody = z.strictObject({});

export function controlRoutes(plane: ControlPlane): Route[] {
  const { simulator } = plane;
  return [
    {
      method: 'GET',
      path: /^\/local\/health$/,
      handle: () =>
        ok({
          status: 'ok',
          ...plane.info,
          spokes: plane.inbound.subscriptionsOfQueue(),
          deliveries: deliveries(plane),
          reconciles: plane.reconciler.activity(),
        }),
    },
    {
      method: 'POST',
      path: /^\/local\/services$/,
      handle: (_, body) => {
        const { accountId, region, connectionNotification, ...service } = parseJsonBody(body, createServiceBody);
        const location = { accountId, region };
        const topicArn = plane.inbound.topicIn(location);
        const { serviceId } = simulator.createService({ ...service, location, ...(connectionNotification && topicArn ? { notificationTopicArn: topicArn } : {}) });
        return { status: 201, body: { serviceId, accountId, region } };
      },
    },
    {
      method: 'GET',
      path: /^\/local\/services$/,
      handle: () =>
        ok({
          services: simulator.listServices().map(({ serviceId, accountId, region, acceptanceRequired, tags }) => ({ serviceId, accountId, region, acceptanceRequired, tags })),
        }),
    },
    {
      method: 'GET',
      path: /^\/local\/services\/([^/]+)\/permissions$/,
      handle: ([serviceId = '']) => {
        const service = simulator.findService(serviceId);
        if (!service) throw new NotFoundError(`endpoint service ${serviceId} does not exist`);
        return ok({ allowedPrincipals: service.allowedPrincipals.map(({ principal }) => principal) });
      },
    },
    ...organizationRoutes(plane.organization),
    ...slackRoutes(plane.slack),
    {
      method: 'POST',
      path: /^\/local\/services\/([^/]+)\/endpoints$/,
      handle: ([serviceId = ''], body) => {
        const { count, ...consumer } = parseJsonBody(body, createEndpointBody);
        if (count !== undefined) {
          simulator.endpointsOf(serviceId); // a missing service is refused before anything is created
          const vpcEndpointIds = Array.from({ length: count }, () => simulator.createEndpoint(serviceId, consumer).vpcEndpointId);
          return { status: 201, body: { vpcEndpointIds } };
        }
        const { vpcEndpointId, state } = simulator.createEndpoint(serviceId, consumer);
        return { status: 201, body: { vpcEndpointId, state } };
      },
    },
    {
      method: 'GET',
      path: /^\/local\/services\/([^/]+)\/endpoints$/,
      handle: ([serviceId = '']) => ok({ endpoints: simulator.endpointsOf(serviceId).map(endpointView) }),
    },
    {
      method: 'DELETE',
      path: /^\/local\/services\/([^/]+)\/endpoints\/([^/]+)$/,
      handle: ([serviceId = '', vpcEndpointId = '']) => ok(endpointView(simulator.deleteEndpoint(serviceId, vpcEndpointId))),
    },
    {
      method: 'POST',
      path: /^\/local\/notifications$/,
      handle: (_, body) => {
        const { message, topicArn } = parseJsonBody(body, notificationBody);
        return { status: 202, body: { messageId: plane.inbound.publish(message, topicArn) } };
      },
    },
    { method: 'GET', path: /^\/local\/notifications$/, handle: () => ok({ messages: plane.inbound.messages() }) },
    { method: 'GET', path: /^\/local\/outbox$/, handle: () => ok({ messages: plane.outbound.messages() }) },
    { method: 'GET', path: /^\/local\/dlq$/, handle: () => ok({ messages: plane.deadLetterQueue.messages() }) },
    {
      method: 'GET',
      path: /^\/local\/dynamodb-calls$/,
      handle: async () => {
        const { requests: byOperation, usage } = await plane.dynamoUsage();
        return ok({ total: Object.values(byOperation).reduce((sum, n) => sum + n, 0), byOperation, ...usage });
      },
    },
    { method: 'GET', path: /^\/local\/invocations$/, handle: () => ok({ invocations: plane.notificationSource.invocations() }) },
    {
      method: 'POST',
      path: /^\/local\/reconcile$/,
      handle: async (_, body) => {
        parseJsonBody(body, emptyBody);
        return invoke('ReconcileFailed', 'the reconcile run', () => plane.reconciler.run());
      },
    },
    {
      method: 'POST',
      path: /^\/local\/dlq\/redrive$/,
      handle: async (_, body) => {
        const { maxNumberOfMessagesPerSecond } = parseJsonBody(body, redriveBody);
        const { sqsEndpoint = '' } = plane.info;
        const summary = await redriveDeadLetters(sqsEndpoint, plane.deadLetterQueue.arn, maxNumberOfMessagesPerSecond);
        if (summary.status === 'COMPLETED') return ok(summary);
        return { status: 500, body: { error: { code: 'RedriveFailed', message: `the message move task ended ${summary.status}: ${summary.failureReason ?? 'no reason given'}` } } };
      },
    },
    { method: 'GET', path: /^\/local\/calls$/, handle: () => ok(plane.calls.snapshot()) },
    { method: 'GET', path: /^\/local\/faults$/, handle: () => ok(plane.faults.current()) },
    { method: 'POST', path: /^\/local\/faults$/, handle: async (_, body) => ok(await plane.setFaults(parseJsonBody(body, faultSettingsSchema))) },
    {
      method: 'POST',
      path: /^\/local\/reset$/,
      handle: async (_, body) => {
        parseJsonBody(body, emptyBody);
        await plane.reset();
        return ok({ status: 'reset' });
      },
    },
  ];
}

/**
 * Notifications on their way: deliveries held back between the topic and the
 * queue and messages in the queue (waiting, being gathered, or back after a
 * failure once their visibility timeout ends), and invocations running.
 */
function deliveries(plane: ControlPlane): { scheduled: number; running: number; queued: number; deadLetters: number } {
  const { visible, inFlight } = plane.notificationQueue.counts();
  return {
    scheduled: plane.inbound.pendingDeliveries() + visible + inFlight,
    running: plane.notificationSource.activity().running,
    queued: visible + inFlight,
    deadLetters: plane.deadLetterQueue.counts().visible + plane.deadLetterQueue.counts().inFlight,
  };
}

function endpointView(connection: EndpointConnection): { vpcEndpointId: string; ownerAccountId: string; region: string; state: string } {
  const { vpcEndpointId, ownerAccountId, region, state } = connection;
  return { vpcEndpointId, ownerAccountId, region, state };
}
