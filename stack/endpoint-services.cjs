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
 * The most services serviceIds may name. Each named service's ARN is in every deciding function's
 * role policy, and IAM allows a role 10,240 characters of inline policy: 40 keep the largest
 * (the reconciler's) near 6,500 (test/stack/policy-sizes.test.ts). More are managed by tag, which
 * costs the policies nothing.
 */
const MAX_NAMED_SERVICES = 40;

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
      `param "serviceIds" names ${unique.length} services; at most ${MAX_NAMED_SERVICES} fit in IAM's policy size limit. ` +
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

function serviceArn(serviceIdOrWildcard) {
  return {
    'Fn::Sub': `arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:vpc-endpoint-service/${serviceIdOrWildcard}`,
  };
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

/**
 * The endpoint services the handler may accept or reject connections on: the managed
 * ones, or, when the list is empty, every endpoint service of this account in this Region
 * (the handler then acts on all services that require acceptance, see lib/config.ts).
 */
async function endpointServiceArns(context) {
  const ids = await managedIds(context);
  return ids.length > 0 ? ids.map(serviceArn) : [serviceArn('*')];
}

module.exports = {
  MAX_NAMED_SERVICES,
  parseServiceIds,
  managedServiceIds,
  connectionNotifications,
  endpointServiceArns,
};
