import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalsClient } from '../../cli/api-client';
import { LOCAL_APPROVER, signedClient } from './approvals-client';
import { eventTypesFor, startLocalStack, type LocalStack } from './local-stack';

// Approvers' decisions through the approvals API, on a stage that manages one
// configured service plus the ones tagged vpce-gatekeeper:managed=true.

const STRANGER = '999988887777';
const CONFIGURED = 'vpce-svc-0c0c0c0c0c0c0c0c0';
const MANAGED_TAG = { 'vpce-gatekeeper:managed': 'true' };

let stack: LocalStack;
let approver: ApprovalsClient;

beforeAll(async () => {
  stack = await startLocalStack({
    policy: { default: { allow: [], onUnmatched: 'hold' } },
    env: { MANAGED_SERVICE_IDS: CONFIGURED, RECONCILE_TAGGED_SERVICES: 'true' },
  });
  approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
});

async function ec2State(serviceId: string, endpointId: string): Promise<string | undefined> {
  return (await stack.listEndpoints(serviceId)).find((e) => e.vpcEndpointId === endpointId)?.state;
}

describe('a service managed because it is tagged', () => {
  it('holds its request, then accepts it through the approvals API at the approval-needed link', async () => {
    const { serviceId } = await stack.createService({ tags: MANAGED_TAG });
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(async () => (await stack.record(serviceId, vpcEndpointId))?.decision?.outcome === 'hold' && (await stack.idle()));
    const needed = (await stack.outbox()).find((m) => (m.message as { eventType: string }).eventType === 'approval-needed');
    const acceptPath = (needed?.message as { actions: { accept: string } }).actions.accept;

    const shown = await approver.request('GET', `/services/${serviceId}/connections/${vpcEndpointId}`);
    const accepted = await approver.request('POST', acceptPath, { body: { reason: 'tagged service, ticket OPS-7' } });

    expect(shown.status).toBe(200);
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ endpointId: vpcEndpointId, decision: { outcome: 'accept', rule: 'approver' } });
    expect(await ec2State(serviceId, vpcEndpointId)).toMatch(/^(pending|available)$/);
    expect(eventTypesFor(await stack.outbox(), vpcEndpointId)).toEqual(['approval-needed', 'accepted']);
  });

  it('leaves an untagged service that is not configured alone: nothing recorded, and the API answers 404', async () => {
    const { serviceId } = await stack.createService();
    const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: STRANGER });
    await stack.waitFor(() => stack.idle());

    const shown = await approver.request('GET', `/services/${serviceId}/connections/${vpcEndpointId}`);
    const accepted = await approver.request('POST', `/services/${serviceId}/connections/${vpcEndpointId}/accept`, { body: { reason: 'x' } });

    expect(await stack.record(serviceId, vpcEndpointId)).toBeUndefined();
    expect(shown.status).toBe(404);
    expect(accepted.status).toBe(404);
    expect(await ec2State(serviceId, vpcEndpointId)).toBe('pendingAcceptance');
  });
});
