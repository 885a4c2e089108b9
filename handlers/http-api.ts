import * as v from '../lib/validation';
import { decideConnection, getConnectionView, listConnections, listServiceConnections, listServices, type ApproverAction } from '../lib/approvals';
import { evaluateRequest, getPolicy, getPolicyHistory, replacePolicy } from '../lib/policy-admin';
import { planPolicy } from '../lib/policy-plan';
import { CONNECTION_STATES } from '../lib/domain/connection';
import { ACCOUNT_ID, ACCOUNT_ID_MESSAGE, ENDPOINT_ID, ENDPOINT_ID_MESSAGE, REGION, REGION_MESSAGE, SERVICE_ID, SERVICE_ID_MESSAGE } from '../lib/domain/ids';
import { policyIdSchema } from '../lib/domain/policy';
import type { PolicyVersion } from '../lib/aws/policy-store';
import { body, ifMatch, jsonBody, onFirstUse, pathParams, queryParams, reasonSchema } from '../lib/http/request';
import { json } from '../lib/http/responses';
import { serveRoutes, type ApiRequest, type Route } from '../lib/http/router';
import { lambdaHandler } from '../lib/lambda';
import { consoleAsset, consoleSettingsOf, unrouted } from '../lib/http/static-assets';
import { requireApprover, type CallerView } from '../lib/http/auth';
import { config, outboundTopicArn } from '../lib/config';

// Fail at cold start, naming the variable, rather than on the first request.
config();
outboundTopicArn();

// Each route's validation is built when a request first needs it: a cold start that answers
// GET /connections builds that route's schema, not the others'.
const serviceId = () => v.pipe(v.string(), v.regex(SERVICE_ID, SERVICE_ID_MESSAGE));
const endpointId = () => v.pipe(v.string(), v.regex(ENDPOINT_ID, ENDPOINT_ID_MESSAGE));
const state = () => v.picklist(CONNECTION_STATES, `must be one of ${CONNECTION_STATES.join(', ')}`);
const page = () => ({
  limit: v.optional(
    v.pipe(v.unknown(), v.transform(Number), v.number(), v.integer('must be a whole number'), v.minValue(1, 'must be at least 1'), v.maxValue(100, 'must be at most 100')),
    25,
  ),
  cursor: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(2048))),
});
const queueQuery = onFirstUse(() =>
  v.strictObject({
    state: v.optional(state(), 'pendingAcceptance'),
    serviceId: v.optional(serviceId()),
    // Where the services live (a fleet's spoke): the provider's account and the service's Region.
    providerAccountId: v.optional(v.pipe(v.string(), v.regex(ACCOUNT_ID, ACCOUNT_ID_MESSAGE))),
    serviceRegion: v.optional(v.pipe(v.string(), v.regex(REGION, REGION_MESSAGE))),
    ...page(),
  }),
);
const serviceQuery = onFirstUse(() => v.strictObject({ state: v.optional(state()), ...page() }));
const versionsQuery = onFirstUse(() => v.strictObject(page()));
const servicePath = onFirstUse(() => v.object({ serviceId: serviceId() }));
const connectionPath = onFirstUse(() => v.object({ serviceId: serviceId(), endpointId: endpointId() }));
const policyPath = onFirstUse(() => v.object({ policyId: policyIdSchema }));
const decisionBody = onFirstUse(() => v.strictObject({ reason: reasonSchema }));
const evaluateBody = onFirstUse(() =>
  v.strictObject({
    accountId: v.pipe(v.string(), v.regex(ACCOUNT_ID, ACCOUNT_ID_MESSAGE)),
    region: v.pipe(v.string(), v.regex(REGION, REGION_MESSAGE)),
  }),
);

const decide = (action: ApproverAction) => async ({ event, caller }: ApiRequest) => {
  const connection = pathParams(event, connectionPath());
  const { reason } = body(event, decisionBody());
  return json(200, await decideConnection({ ...connection, action, reason, actor: caller.principal }));
};

/** The console's build, shipped beside this handler (serverless.yml: package.patterns). */
const CONSOLE_DIST = new URL('../console/dist/', import.meta.url);
const consolePath = onFirstUse(() => v.object({ asset: v.pipe(v.string(), v.maxLength(100)) }));

const consoleSettings = () => consoleSettingsOf(config());

function approvers() {
  const { APPROVER_PRINCIPALS, APPROVER_GROUPS, JWT_GROUPS_CLAIM } = config();
  return { principals: APPROVER_PRINCIPALS, groups: APPROVER_GROUPS, groupsClaim: JWT_GROUPS_CLAIM };
}

/** Whether the caller may write; the API checks it again on every write. */
function roleOf(caller: Parameters<typeof requireApprover>[0]): 'approver' | 'viewer' {
  try {
    requireApprover(caller, approvers());
    return 'approver';
  } catch {
    return 'viewer';
  }
}

const policyResponse = (status: number, stored: PolicyVersion) => json(status, stored, { etag: `"${stored.version}"` });

/** The API. openapi.yaml and serverless.yml list the same routes (test/unit/api-contract.test.ts). */
export const routes: Route[] = [
  { method: 'GET', path: '/console', access: 'public', handle: async () => consoleAsset(CONSOLE_DIST, undefined, consoleSettings()) },
  { method: 'GET', path: '/favicon.ico', access: 'public', handle: async () => consoleAsset(CONSOLE_DIST, 'favicon.ico', consoleSettings()) },
  {
    method: 'GET',
    path: '/console/{asset}',
    access: 'public',
    handle: async ({ event }) => consoleAsset(CONSOLE_DIST, pathParams(event, consolePath()).asset, consoleSettings()),
  },
  // API Gateway's catch-all: /console/ and the API's own 404s (HTTP API route keys cannot end in '/').
  { method: 'ANY', path: '$default', access: 'public', handle: async ({ event }) => unrouted({ method: event.requestContext.http.method, rawPath: event.rawPath }) },
  {
    method: 'GET',
    path: '/me',
    access: 'read',
    handle: async ({ caller }) => json(200, { principal: caller.principal, via: caller.via, groups: caller.groups, role: roleOf(caller) } satisfies CallerView),
  },
  { method: 'GET', path: '/connections', access: 'read', handle: async ({ event }) => pageOf(await listConnections(queryParams(event, queueQuery()))) },
  { method: 'GET', path: '/services', access: 'read', handle: async () => json(200, { services: await listServices() }) },
  {
    method: 'GET',
    path: '/services/{serviceId}/connections',
    access: 'read',
    handle: async ({ event }) => pageOf(await listServiceConnections(pathParams(event, servicePath()).serviceId, queryParams(event, serviceQuery()))),
  },
  {
    method: 'GET',
    path: '/services/{serviceId}/connections/{endpointId}',
    access: 'read',
    handle: async ({ event }) => {
      const { serviceId: service, endpointId: endpoint } = pathParams(event, connectionPath());
      return json(200, await getConnectionView(service, endpoint));
    },
  },
  { method: 'POST', path: '/services/{serviceId}/connections/{endpointId}/accept', access: 'approve', handle: decide('accept') },
  { method: 'POST', path: '/services/{serviceId}/connections/{endpointId}/reject', access: 'approve', handle: decide('reject') },
  { method: 'POST', path: '/services/{serviceId}/connections/{endpointId}/revoke', access: 'approve', handle: decide('revoke') },
  { method: 'GET', path: '/policies/{policyId}', access: 'read', handle: async ({ event }) => policyResponse(200, await getPolicy(pathParams(event, policyPath()).policyId)) },
  {
    method: 'PUT',
    path: '/policies/{policyId}',
    access: 'approve',
    handle: async ({ event, caller }) => {
      const { policyId } = pathParams(event, policyPath());
      const { stored, created } = await replacePolicy(policyId, jsonBody(event), { actor: caller.principal, ifMatch: ifMatch(event) });
      return policyResponse(created ? 201 : 200, stored);
    },
  },
  {
    method: 'GET',
    path: '/policies/{policyId}/versions',
    access: 'read',
    handle: async ({ event }) => {
      const { items, cursor } = await getPolicyHistory(pathParams(event, policyPath()).policyId, queryParams(event, versionsQuery()));
      return json(200, { versions: items, nextCursor: cursor ?? null });
    },
  },
  {
    method: 'POST',
    path: '/policies/{policyId}/evaluate',
    access: 'read', // changes nothing
    handle: async ({ event }) => json(200, await evaluateRequest(pathParams(event, policyPath()).policyId, body(event, evaluateBody()))),
  },
  {
    method: 'POST',
    path: '/policies/{policyId}/plan',
    // Changes nothing, but reads every governed connection from EC2, whose request rate the decisions share.
    access: 'approve',
    handle: async ({ event }) => json(200, await planPolicy(pathParams(event, policyPath()).policyId, jsonBody(event))),
  },
];

function pageOf({ items, cursor }: { items: unknown[]; cursor?: string }) {
  return json(200, { connections: items, nextCursor: cursor ?? null });
}

/** The approvals API behind API Gateway (HTTP API, payload 2.0, IAM or JWT authorization). */
export const handler = lambdaHandler(serveRoutes(routes, approvers));
