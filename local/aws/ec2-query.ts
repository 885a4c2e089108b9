import type { CallLog } from './call-log';
import { InvalidPrincipalError, type AllowedPrincipal, type EndpointConnection, type EndpointService, type PrivateLinkSimulator } from './ec2-simulator';
import { Ec2ApiError } from './ec2-errors';
import type { Faults } from './faults';
import { QueryParams } from './form';
import type { QueryResponse } from '../http-io';
import { requestId as newRequestId } from './ids';
import { pageOf } from './paging';
import { element, itemSet, textElement, textItemSet, xmlDocument } from './xml';

/** The XML namespace of every EC2 response. */
export const EC2_XML_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

const PROVIDER_ACCOUNT_ID = '000000000000';
const REGION = 'us-east-1';

export interface Ec2QueryDeps {
  simulator: PrivateLinkSimulator;
  faults: Faults;
  calls: CallLog;
}

type ActionHandler = (params: QueryParams, simulator: PrivateLinkSimulator) => string[];

const ACTIONS = new Map<string, ActionHandler>([
  ['DescribeVpcEndpointConnections', describeConnections],
  ['AcceptVpcEndpointConnections', (params, simulator) => actOnConnections(params, simulator, 'accept')],
  ['RejectVpcEndpointConnections', (params, simulator) => actOnConnections(params, simulator, 'reject')],
  ['DescribeVpcEndpointServiceConfigurations', describeServiceConfigurations],
  ['DescribeVpcEndpointServicePermissions', describeServicePermissions],
  ['ModifyVpcEndpointServicePermissions', modifyServicePermissions],
]);

/** The calls that change something in EC2: the ones `crashAfterEc2Call` lets act before the caller dies. */
const ACTING_CALLS: ReadonlySet<string> = new Set(['AcceptVpcEndpointConnections', 'RejectVpcEndpointConnections', 'ModifyVpcEndpointServicePermissions']);

/** An answer to an EC2 call; `withhold`: EC2 acted, and the caller is never to hear back (crashAfterEc2Call). */
export interface Ec2Answer extends QueryResponse {
  withhold?: boolean;
}

/**
 * Answers one request in the EC2 Query protocol: a form-encoded POST in, XML out,
 * errors as `<Response><Errors><Error>…` with the HTTP status EC2 would use.
 */
export function answerEc2Query(body: string, deps: Ec2QueryDeps): Ec2Answer {
  const params = QueryParams.parse(body);
  const action = params.get('Action') ?? '';
  const requestId = newRequestId();
  const markFailed = deps.calls.received(action, endpointIdsNamed(params));
  if (!deps.faults.withinEc2RateLimit(action) || deps.faults.throttleEc2Call()) {
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
    const fields = run(params, deps.simulator);
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

function describeConnections(params: QueryParams, simulator: PrivateLinkSimulator): string[] {
  const matching = applyFilters(simulator.listConnections(), params, CONNECTION_FILTERS);
  const page = pageOf(matching, params.get('MaxResults'), params.get('NextToken'));
  return [itemSet('vpcEndpointConnectionSet', page.items.map(connectionFields)), textElement('nextToken', page.nextToken)];
}

function connectionFields(connection: EndpointConnection): string[] {
  return [
    textElement('serviceId', connection.serviceId),
    textElement('vpcEndpointId', connection.vpcEndpointId),
    textElement('vpcEndpointOwner', connection.ownerAccountId),
    textElement('vpcEndpointState', connection.state),
    textElement('creationTimestamp', connection.createdAt),
    textItemSet('networkLoadBalancerArnSet', [loadBalancerArn(connection.serviceId)]),
    textElement('ipAddressType', 'ipv4'),
    textElement('vpcEndpointConnectionId', connection.vpcEndpointConnectionId),
    textElement('vpcEndpointRegion', connection.region),
  ];
}

function actOnConnections(params: QueryParams, simulator: PrivateLinkSimulator, verb: 'accept' | 'reject'): string[] {
  const serviceId = requireParameter(params, 'ServiceId');
  const vpcEndpointIds = params.list('VpcEndpointId');
  if (vpcEndpointIds.length === 0) throw missingParameter('VpcEndpointId');
  if (!simulator.findService(serviceId)) throw serviceNotFound(serviceId);
  const failures = simulator[verb](serviceId, vpcEndpointIds);
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

const SERVICE_FILTERS: Record<string, FilterField<EndpointService>> = {
  'service-id': { read: (service) => service.serviceId },
  'service-name': { read: (service) => serviceName(service.serviceId) },
  'service-state': { read: () => 'Available', caseInsensitive: true },
};

function describeServiceConfigurations(params: QueryParams, simulator: PrivateLinkSimulator): string[] {
  const ids = params.list('ServiceId');
  const unknown = ids.find((serviceId) => !simulator.findService(serviceId));
  if (unknown !== undefined) throw serviceNotFound(unknown);
  const named = ids.length === 0 ? simulator.listServices() : simulator.listServices().filter((s) => ids.includes(s.serviceId));
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
    textElement('serviceName', serviceName(service.serviceId)),
    textElement('serviceState', 'Available'),
    textItemSet('availabilityZoneSet', [`${REGION}a`, `${REGION}b`]),
    textElement('acceptanceRequired', service.acceptanceRequired),
    textElement('managesVpcEndpoints', false),
    textItemSet('networkLoadBalancerArnSet', [loadBalancerArn(service.serviceId)]),
    textItemSet('supportedIpAddressTypeSet', ['ipv4']),
    textItemSet('baseEndpointDnsNameSet', [`${service.serviceId}.${REGION}.vpce.amazonaws.com`]),
  ];
}

const PERMISSION_FILTERS: Record<string, FilterField<AllowedPrincipal>> = {
  principal: { read: (allowed) => allowed.principal },
  'principal-type': { read: (allowed) => allowed.principalType },
};

function describeServicePermissions(params: QueryParams, simulator: PrivateLinkSimulator): string[] {
  const serviceId = requireParameter(params, 'ServiceId');
  const service = simulator.findService(serviceId);
  if (!service) throw serviceNotFound(serviceId);
  const matching = applyFilters(service.allowedPrincipals, params, PERMISSION_FILTERS);
  const page = pageOf(matching, params.get('MaxResults'), params.get('NextToken'));
  return [itemSet('allowedPrincipals', page.items.map((allowed) => principalFields(allowed, serviceId))), textElement('nextToken', page.nextToken)];
}

function modifyServicePermissions(params: QueryParams, simulator: PrivateLinkSimulator): string[] {
  const serviceId = requireParameter(params, 'ServiceId');
  if (!simulator.findService(serviceId)) throw serviceNotFound(serviceId);
  let added: AllowedPrincipal[];
  try {
    added = simulator.modifyPermissions(serviceId, { add: params.list('AddAllowedPrincipals'), remove: params.list('RemoveAllowedPrincipals') });
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

function serviceName(serviceId: string): string {
  return `com.amazonaws.vpce.${REGION}.${serviceId}`;
}

function loadBalancerArn(serviceId: string): string {
  return `arn:aws:elasticloadbalancing:${REGION}:${PROVIDER_ACCOUNT_ID}:loadbalancer/net/${serviceId}/${serviceId.slice(-16)}`;
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
