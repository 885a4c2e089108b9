import type { CallLog } from './call-log';
import { authorizeDescribe, authorizeOnService, type Ec2Caller, ec2CallerOf, spokeUnreachable } from './ec2-callers';
import {
  CONNECTION_EVENTS,
  type ConnectionEvent,
  type ConnectionNotificationConfig,
  InvalidPrincipalError,
  type AllowedPrincipal,
  type EndpointConnection,
  type EndpointService,
  type PrivateLinkSimulator,
} from './ec2-simulator';
import { Ec2ApiError } from './ec2-errors';
import type { Faults } from './faults';
import { QueryParams } from './form';
import type { QueryResponse } from '../http-io';
import { requestId as newRequestId } from './ids';
import { locationKey } from './locations';
import { pageOf } from './paging';
import type { LocalSts } from './sts-api';
import { element, itemSet, textElement, textItemSet, xmlDocument } from './xml';

/** The XML namespace of every EC2 response. */
export const EC2_XML_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export interface Ec2QueryDeps {
  simulator: PrivateLinkSimulator;
  faults: Faults;
  calls: CallLog;
  /** Who the temporary credentials belong to. */
  sts: LocalSts;
  /** Whether an SNS topic exists, for connection notifications. */
  topicExists: (topicArn: string) => boolean;
}

/** One request, as an action sees it: its parameters, who calls, and what the caller can reach. */
interface Call {
  params: QueryParams;
  action: string;
  caller: Ec2Caller;
  deps: Ec2QueryDeps;
}

type ActionHandler = (call: Call) => string[];

const ACTIONS = new Map<string, ActionHandler>([
  ['DescribeVpcEndpointConnections', describeConnections],
  ['AcceptVpcEndpointConnections', (call) => actOnConnections(call, 'accept')],
  ['RejectVpcEndpointConnections', (call) => actOnConnections(call, 'reject')],
  ['DescribeVpcEndpointServiceConfigurations', describeServiceConfigurations],
  ['DescribeVpcEndpointServicePermissions', describeServicePermissions],
  ['ModifyVpcEndpointServicePermissions', modifyServicePermissions],
  ['CreateVpcEndpointConnectionNotification', createConnectionNotification],
  ['DescribeVpcEndpointConnectionNotifications', describeConnectionNotifications],
]);

/** The calls that change something in EC2: the ones `crashAfterEc2Call` lets act before the caller dies. */
const ACTING_CALLS: ReadonlySet<string> = new Set(['AcceptVpcEndpointConnections', 'RejectVpcEndpointConnections', 'ModifyVpcEndpointServicePermissions']);

/** An answer to an EC2 call; `withhold`: EC2 acted, and the caller is never to hear back (crashAfterEc2Call). */
export interface Ec2Answer extends QueryResponse {
  withhold?: boolean;
}

/**
 * Answers one request in the EC2 Query protocol: a form-encoded POST in, XML out,
 * errors as `<Response><Errors><Error>…` with the HTTP status EC2 would use. The
 * caller's credentials say the account and its SigV4 scope the Region: it sees
 * only the services living there, under that account and Region's rate limits.
 */
export function answerEc2Query(request: { body: string; authorization?: string }, deps: Ec2QueryDeps): Ec2Answer {
  const params = QueryParams.parse(request.body);
  const action = params.get('Action') ?? '';
  const requestId = newRequestId();
  let caller: Ec2Caller;
  try {
    caller = ec2CallerOf(request.authorization, deps.sts);
  } catch (error) {
    deps.calls.received(action, endpointIdsNamed(params))();
    if (error instanceof Ec2ApiError) return ec2ErrorResponse(error, requestId);
    throw error;
  }
  const markFailed = deps.calls.received(action, endpointIdsNamed(params), locationKey(caller));
  if (caller.kind === 'spoke' && deps.faults.spokeUnavailable(caller)) {
    markFailed();
    return ec2ErrorResponse(spokeUnreachable(caller, action), requestId);
  }
  if (!deps.faults.withinEc2RateLimit(action, caller) || deps.faults.throttleEc2Call()) {
    markFailed();
    return ec2ErrorResponse(new Ec2ApiError('RequestLimitExceeded', 'Request limit exceeded.', 503), requestId);
  }
  const serverError = deps.faults.ec2ServerError();
  if (serverError) {
    markFailed();
    const error =
      serverError === 500
        ? new Ec2ApiError('InternalError', 'An internal error has occurred', 500)
        : new Ec2ApiError('Unavailable', 'The server is overloaded or is not accepting requests.', 503);
    return ec2ErrorResponse(error, requestId);
  }
  if (deps.faults.ec2UnavailableFor([...serviceIdsNamed(params), ...endpointIdsNamed(params)])) {
    markFailed();
    return ec2ErrorResponse(new Ec2ApiError('Unavailable', 'The server is overloaded or is not accepting requests.', 503), requestId);
  }
  try {
    const run = ACTIONS.get(action);
    if (!run) throw new Ec2ApiError('InvalidAction', `The action ${action || '(none)'} is not valid for this web service.`);
    if (params.get('DryRun') === 'true') {
      throw new Ec2ApiError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
    }
    const fields = run({ params, action, caller, deps });
    const root = element(`${action}Response`, [textElement('requestId', requestId), ...fields], { xmlns: EC2_XML_NAMESPACE });
    const withhold = ACTING_CALLS.has(action) && deps.faults.crashAfterEc2Call();
    return { status: 200, xml: xmlDocument(root), requestId, ...(withhold ? { withhold } : {}) };
  } catch (error) {
    if (error instanceof Ec2ApiError) return ec2ErrorResponse(error, requestId);
    throw error;
  }
}

/** The EC2 error document. */
export function ec2ErrorResponse(error: Ec2ApiError, requestId: string): QueryResponse {
  const root = element('Response', [
    element('Errors', [element('Error', [textElement('Code', error.code), textElement('Message', error.message)])]),
    textElement('RequestID', requestId),
  ]);
  return { status: error.status, xml: xmlDocument(root), requestId };
}

/** The endpoint ids a call names: VpcEndpointId.N and vpc-endpoint-id filter values. */
function endpointIdsNamed(params: QueryParams): string[] {
  const fromFilters = params
    .structures('Filter')
    .filter((filter) => filter.get('Name') === 'vpc-endpoint-id')
    .flatMap((filter) => filter.list('Value'));
  return [...params.list('VpcEndpointId'), ...fromFilters];
}

/** The endpoint service ids a call names: ServiceId, ServiceId.N and service-id filter values. */
function serviceIdsNamed(params: QueryParams): string[] {
  const fromFilters = params
    .structures('Filter')
    .filter((filter) => filter.get('Name') === 'service-id')
    .flatMap((filter) => filter.list('Value'));
  const single = params.get('ServiceId');
  return [...(single ? [single] : []), ...params.list('ServiceId'), ...fromFilters];
}

interface FilterField<T> {
  read: (item: T) => string;
  caseInsensitive?: boolean;
}

/** Applies Filter.N.Name / Filter.N.Value.M: filters AND together, values within one OR. */
function applyFilters<T>(items: readonly T[], params: QueryParams, fields: Record<string, FilterField<T>>): T[] {
  const predicates = params.structures('Filter').map((filter) => {
    const name = filter.get('Name') ?? '';
    const field = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (!field) throw new Ec2ApiError('InvalidParameterValue', `The filter '${name}' is invalid`);
    const normalize = (value: string) => (field.caseInsensitive ? value.toLowerCase() : value);
    const wanted = new Set(filter.list('Value').map(normalize));
    return (item: T) => wanted.has(normalize(field.read(item)));
  });
  return items.filter((item) => predicates.every((matches) => matches(item)));
}

const CONNECTION_FILTERS: Record<string, FilterField<EndpointConnection>> = {
  'service-id': { read: (connection) => connection.serviceId },
  'vpc-endpoint-id': { read: (connection) => connection.vpcEndpointId },
  'vpc-endpoint-owner': { read: (connection) => connection.ownerAccountId },
  'vpc-endpoint-state': { read: (connection) => connection.state, caseInsensitive: true },
};

function describeConnections({ params, action, caller, deps }: Call): string[] {
  authorizeDescribe(caller, action);
  const matching = applyFilters(deps.simulator.listConnections(caller), params, CONNECTION_FILTERS);
  const page = pageOf(matching, params.get('MaxResults'), params.get('NextToken'));
  return [itemSet('vpcEndpointConnectionSet', page.items.map((connection) => connectionFields(connection, caller))), textElement('nextToken', page.nextToken)];
}

function connectionFields(connection: EndpointConnection, caller: Ec2Caller): string[] {
  return [
    textElement('serviceId', connection.serviceId),
    textElement('vpcEndpointId', connection.vpcEndpointId),
    textElement('vpcEndpointOwner', connection.ownerAccountId),
    textElement('vpcEndpointState', connection.state),
    textElement('creationTimestamp', connection.createdAt),
    textItemSet('networkLoadBalancerArnSet', [loadBalancerArn(connection.serviceId, caller)]),
    textElement('ipAddressType', 'ipv4'),
    textElement('vpcEndpointConnectionId', connection.vpcEndpointConnectionId),
    textElement('vpcEndpointRegion', connection.region),
  ];
}

function actOnConnections(call: Call, verb: 'accept' | 'reject'): string[] {
  const serviceId = requireParameter(call.params, 'ServiceId');
  const vpcEndpointIds = call.params.list('VpcEndpointId');
  if (vpcEndpointIds.length === 0) throw missingParameter('VpcEndpointId');
  serviceActedOn(call, serviceId);
  const failures = call.deps.simulator[verb](serviceId, vpcEndpointIds);
  return [
    itemSet(
      'unsuccessful',
      failures.map((failure) => [
        element('error', [textElement('code', failure.code), textElement('message', failure.message)]),
        textElement('resourceId', failure.resourceId),
      ]),
    ),
  ];
}

/** The service a call acts on: one the caller sees, and may act on. */
function serviceActedOn({ deps, caller, action }: Call, serviceId: string): EndpointService {
  const service = deps.simulator.findService(serviceId, caller);
  if (!service) throw serviceNotFound(serviceId);
  authorizeOnService(caller, action, service);
  return service;
}

const SERVICE_FILTERS: Record<string, FilterField<EndpointService>> = {
  'service-id': { read: (service) => service.serviceId },
  'service-name': { read: (service) => serviceName(service) },
  'service-state': { read: () => 'Available', caseInsensitive: true },
};

function describeServiceConfigurations({ params, action, caller, deps }: Call): string[] {
  authorizeDescribe(caller, action);
  const ids = params.list('ServiceId');
  const here = deps.simulator.listServices(caller);
  const unknown = ids.find((serviceId) => !here.some((service) => service.serviceId === serviceId));
  if (unknown !== undefined) throw serviceNotFound(unknown);
  const named = ids.length === 0 ? here : here.filter((s) => ids.includes(s.serviceId));
  const matching = applyFilters(named, params, { ...SERVICE_FILTERS, ...tagFilters(params) });
  const page = pageOf(matching, params.get('MaxResults'), params.get('NextToken'));
  return [itemSet('serviceConfigurationSet', page.items.map(serviceFields)), textElement('nextToken', page.nextToken)];
}

/** EC2's `tag:<key>` filters: the service's value of that tag (none matches no value). */
function tagFilters(params: QueryParams): Record<string, FilterField<EndpointService>> {
  const names = params.structures('Filter').map((filter) => filter.get('Name') ?? '').filter((name) => name.startsWith('tag:'));
  return Object.fromEntries(names.map((name) => [name, { read: (service: EndpointService) => service.tags[name.slice(4)] ?? '\u0000' }]));
}

function serviceFields(service: EndpointService): string[] {
  return [
    itemSet('tagSet', Object.entries(service.tags).map(([key, value]) => [textElement('key', key), textElement('value', value)])),
    itemSet('serviceType', [[textElement('serviceType', 'Interface')]]),
    textElement('serviceId', service.serviceId),
    textElement('serviceName', serviceName(service)),
    textElement('serviceState', 'Available'),
    textItemSet('availabilityZoneSet', [`${service.region}a`, `${service.region}b`]),
    textElement('acceptanceRequired', service.acceptanceRequired),
    textElement('managesVpcEndpoints', false),
    textItemSet('networkLoadBalancerArnSet', [loadBalancerArn(service.serviceId, service)]),
    textItemSet('supportedIpAddressTypeSet', ['ipv4']),
    textItemSet('baseEndpointDnsNameSet', [`${service.serviceId}.${service.region}.vpce.amazonaws.com`]),
  ];
}

const PERMISSION_FILTERS: Record<string, FilterField<AllowedPrincipal>> = {
  principal: { read: (allowed) => allowed.principal },
  'principal-type': { read: (allowed) => allowed.principalType },
};

function describeServicePermissions(call: Call): string[] {
  const { params } = call;
  const serviceId = requireParameter(params, 'ServiceId');
  const service = serviceActedOn(call, serviceId);
  const matching = applyFilters(service.allowedPrincipals, params, PERMISSION_FILTERS);
  const page = pageOf(matching, params.get('MaxResults'), params.get('NextToken'));
  return [itemSet('allowedPrincipals', page.items.map((allowed) => principalFields(allowed, serviceId))), textElement('nextToken', page.nextToken)];
}

function modifyServicePermissions(call: Call): string[] {
  const { params } = call;
  const serviceId = requireParameter(params, 'ServiceId');
  serviceActedOn(call, serviceId);
  let added: AllowedPrincipal[];
  try {
    added = call.deps.simulator.modifyPermissions(serviceId, { add: params.list('AddAllowedPrincipals'), remove: params.list('RemoveAllowedPrincipals') });
  } catch (error) {
    if (error instanceof InvalidPrincipalError) throw new Ec2ApiError('InvalidPrincipal', `Invalid principal ${error.principal}`);
    throw error;
  }
  return [itemSet('addedPrincipalSet', added.map((allowed) => principalFields(allowed, serviceId))), textElement('return', true)];
}

function principalFields(allowed: AllowedPrincipal, serviceId: string): string[] {
  return [
    textElement('principalType', allowed.principalType),
    textElement('principal', allowed.principal),
    textElement('servicePermissionId', allowed.servicePermissionId),
    textElement('serviceId', serviceId),
  ];
}

/**
 * CreateVpcEndpointConnectionNotification for a service (an endpoint's own notifications are not
 * simulated): its events, some or all, to an SNS topic in the service's Region.
 */
function createConnectionNotification(call: Call): string[] {
  const { params, deps } = call;
  const topicArn = requireParameter(params, 'ConnectionNotificationArn');
  const events = params.list('ConnectionEvents');
  if (events.length === 0) throw missingParameter('ConnectionEvents');
  if (params.get('VpcEndpointId')) throw new Ec2ApiError('InvalidParameter', 'Endpoint connection notifications are not simulated; give ServiceId.');
  const service = serviceActedOn(call, requireParameter(params, 'ServiceId'));
  const unknownEvent = events.find((event) => !(CONNECTION_EVENTS as readonly string[]).includes(event));
  if (unknownEvent !== undefined) throw new Ec2ApiError('InvalidParameterValue', `Value (${unknownEvent}) for parameter connectionEvents is invalid. Expected one of Accept, Connect, Delete, Reject.`);
  const topicRegion = topicArn.split(':')[3];
  if (topicRegion !== service.region || !deps.topicExists(topicArn)) {
    throw new Ec2ApiError('InvalidParameter', `The SNS topic ${topicArn} does not exist in ${service.region}.`);
  }
  const config = deps.simulator.createConnectionNotification(service.serviceId, topicArn, events as ConnectionEvent[]);
  return [element('connectionNotification', connectionNotificationFields(config, service)), textElement('clientToken', params.get('ClientToken'))];
}

const CONNECTION_NOTIFICATION_FILTERS: Record<string, FilterField<ConnectionNotificationConfig>> = {
  'connection-notification-arn': { read: (config) => config.topicArn },
  'connection-notification-id': { read: (config) => config.connectionNotificationId },
  'connection-notification-state': { read: () => 'Enabled', caseInsensitive: true },
  'connection-notification-type': { read: () => 'Topic', caseInsensitive: true },
  'service-id': { read: (config) => config.serviceId },
};

function describeConnectionNotifications({ params, action, caller, deps }: Call): string[] {
  authorizeDescribe(caller, action);
  const id = params.get('ConnectionNotificationId');
  const here = deps.simulator.listConnectionNotifications(caller).filter((config) => id === undefined || config.connectionNotificationId === id);
  if (id !== undefined && here.length === 0) {
    throw new Ec2ApiError('InvalidConnectionNotification', `The connection notification Id '${id}' does not exist`);
  }
  const matching = applyFilters(here, params, CONNECTION_NOTIFICATION_FILTERS);
  const page = pageOf(matching, params.get('MaxResults'), params.get('NextToken'));
  const services = new Map(deps.simulator.listServices(caller).map((service) => [service.serviceId, service]));
  return [
    itemSet(
      'connectionNotificationSet',
      page.items.map((config) => connectionNotificationFields(config, services.get(config.serviceId) as EndpointService)),
    ),
    textElement('nextToken', page.nextToken),
  ];
}

function connectionNotificationFields(config: ConnectionNotificationConfig, service: EndpointService): string[] {
  return [
    textElement('connectionNotificationId', config.connectionNotificationId),
    textElement('serviceId', config.serviceId),
    textElement('connectionNotificationType', 'Topic'),
    textElement('connectionNotificationArn', config.topicArn),
    textItemSet('connectionEvents', config.events),
    textElement('connectionNotificationState', 'Enabled'),
    textElement('serviceRegion', service.region),
  ];
}

function serviceName(service: EndpointService): string {
  return `com.amazonaws.vpce.${service.region}.${service.serviceId}`;
}

function loadBalancerArn(serviceId: string, { accountId, region }: { accountId: string; region: string }): string {
  return `arn:aws:elasticloadbalancing:${region}:${accountId}:loadbalancer/net/${serviceId}/${serviceId.slice(-16)}`;
}

function requireParameter(params: QueryParams, name: string): string {
  const value = params.get(name);
  if (value === undefined || value === '') throw missingParameter(name);
  return value;
}

function missingParameter(name: string): Ec2ApiError {
  return new Ec2ApiError('MissingParameter', `The request must contain the parameter ${name}`);
}

function serviceNotFound(serviceId: string): Ec2ApiError {
  return new Ec2ApiError('InvalidVpcEndpointServiceId.NotFound', `The Vpc Endpoint Service Id '${serviceId}' does not exist`);
}
