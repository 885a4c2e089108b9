import { LOCAL_APPROVER, signedClient } from './approvals-client';
import type { LocalStack } from './local-stack';

/**
 * An OU name as an attacker writes it (AWS Organizations takes any characters
 * in one): it erases the line above, retitles the terminal window, reverses the
 * text after it, and ends in a C1 control introducer.
 */
export const HOSTILE_OU_NAME = 'Sandbox\u001b[1A\u001b[2K\u001b]0;pwned\u0007\u202Eevil\u009b';

/**
 * A request of `accountId`, an account in an OU named `ouName`, held on a new
 * service whose policy allows another OU only: its reason quotes the OU path,
 * hostile name included.
 */
export async function heldBelowOu(stack: LocalStack, accountId: string, ouName = HOSTILE_OU_NAME): Promise<{ serviceId: string; endpointId: string }> {
  const post = async (path: string, body: unknown) => {
    const response = await stack.request('POST', path, body);
    if (response.status !== 201) throw new Error(`POST ${path} answered ${response.status}: ${JSON.stringify(response.body)}`);
    return response.body as Record<string, string>;
  };
  const { rootId = '' } = await post('/local/organization', { organizationId: 'o-a1b2c3d4e5' });
  const { organizationalUnitId: allowed = '' } = await post('/local/organization/units', { parentId: rootId, name: 'Prod' });
  const { organizationalUnitId: named = '' } = await post('/local/organization/units', { parentId: rootId, name: ouName });
  await post('/local/organization/accounts', { accountId, parentId: named });
  const { serviceId } = await stack.createService();
  const policy = await signedClient(stack.baseUrl, LOCAL_APPROVER).request('PUT', `/policies/${serviceId}`, { body: { allow: [{ organizationalUnit: allowed }] } });
  if (policy.status !== 201) throw new Error(`PUT /policies/${serviceId} answered ${policy.status}`);
  const { vpcEndpointId: endpointId } = await stack.createEndpoint(serviceId, { ownerAccountId: accountId });
  await stack.waitFor(async () => (await stack.record(serviceId, endpointId))?.decision?.rule === 'onUnmatched:hold' && (await stack.idle()));
  return { serviceId, endpointId };
}
