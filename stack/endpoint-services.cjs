'use strict';

/**
 * Everything in the stack that depends on the list of managed endpoint services.
 *
 * The list comes from the stage parameter `serviceIds` (comma-separated, may be empty):
 *
 *   serverless package --stage prod --param="serviceIds=vpce-svc-0123456789abcdef0,vpce-svc-..."
 *
 * CloudFormation cannot loop over a list without a macro, so serverless.yml pulls these
 * values in through `${file(./stack/endpoint-services.cjs):<export>}`; osls calls each
 * exported function with `{ options, resolveVariable }` while resolving variables.
 */

// Same rule as MANAGED_SERVICE_IDS in lib/config.ts: a bad id fails packaging, not the first invocation.
const SERVICE_ID = /^vpce-svc-[0-9a-f]{8,17}$/;

const CONNECTION_EVENTS = ['Connect', 'Accept', 'Reject', 'Delete'];

/**
 * The most services serviceIds may name. The role policies no longer name services (the deciding
 * roles act on any endpoint service of the account tagged vpce-gatekeeper:managed=true), but the
 * list is each deciding function's MANAGED_SERVICE_IDS, and Lambda allows a function 4 KB of
 * environment variables in all: 50 (27 characters each) keep the largest environment, every
 * other value at its longest (30 spokes, 256-character external ids), within 90% of it
 * (test/stack/fleet.test.ts). More are managed by tag alone (reconcileTaggedServices=true), which
 * costs nothing.
 */
const MAX_NAMED_SERVICES = 50;

/** Parses a comma-separated list of endpoint service ids; throws naming the bad ones. */
function parseServiceIds(raw) {
  const ids = String(raw ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  const invalid = ids.filter((id) => !SERVICE_ID.test(id));
  if (invalid.length > 0) {
    throw new Error(`param "serviceIds" holds ids that are not vpce-svc-…: ${invalid.join(', ')}`);
  }
  const unique = [...new Set(ids)];
  if (unique.length > MAX_NAMED_SERVICES) {
    throw new Error(
      `param "serviceIds" names ${unique.length} services; at most ${MAX_NAMED_SERVICES} fit in a function's environment (Lambda's 4 KB). ` +
        'Tag the others vpce-gatekeeper:managed=true and set reconcileTaggedServices=true (docs/operations.md)',
    );
  }
  return unique;
}

async function managedIds({ resolveVariable }) {
  return parseServiceIds(await resolveVariable('param:serviceIds'));
}

/** `vpce-svc-0123456789abcdef0` -> `ConnectionNotification0123456789abcdef0` */
function notificationLogicalId(serviceId) {
  return `ConnectionNotification${serviceId.slice('vpce-svc-'.length)}`;
}

/** The ids joined again, normalised, for the MANAGED_SERVICE_IDS environment variable. */
async function managedServiceIds(context) {
  return (await managedIds(context)).join(',');
}

/** One AWS::EC2::VPCEndpointConnectionNotification per managed service, all to the inbound topic. */
async function connectionNotifications(context) {
  const resources = {};
  for (const serviceId of await managedIds(context)) {
    resources[notificationLogicalId(serviceId)] = {
      Type: 'AWS::EC2::VPCEndpointConnectionNotification',
      // vpce.amazonaws.com may publish only once the topic policy lets it.
      DependsOn: ['NotificationsTopicPolicy'],
      Properties: {
        ServiceId: serviceId,
        ConnectionEvents: CONNECTION_EVENTS,
        ConnectionNotificationArn: { Ref: 'NotificationsTopic' },
      },
    };
  }
  return { Resources: resources };
}

module.exports = {
  MAX_NAMED_SERVICES,
  parseServiceIds,
  managedServiceIds,
  connectionNotifications,
};
