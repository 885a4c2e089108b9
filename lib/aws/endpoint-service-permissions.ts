import {
  ModifyVpcEndpointServicePermissionsCommand,
  paginateDescribeVpcEndpointServicePermissions,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { ec2Client } from './clients';

const PAGE_SIZE = 1000;
/** Principals sent in one ModifyVpcEndpointServicePermissions call. */
const MODIFY_BATCH_SIZE = 100;

/** The principals allowed to create an endpoint to a service ('*' or IAM ARNs), every page. */
export async function describeAllowedPrincipals(serviceId: string, client: EC2Client = ec2Client): Promise<string[]> {
  const principals: string[] = [];
  const pages = paginateDescribeVpcEndpointServicePermissions({ client, pageSize: PAGE_SIZE }, { ServiceId: serviceId });
  for await (const page of pages) {
    for (const allowed of page.AllowedPrincipals ?? []) if (allowed.Principal) principals.push(allowed.Principal);
  }
  return principals;
}

/** Adds and removes allowed principals of a service, in batches; throws when EC2 refuses. */
export async function modifyAllowedPrincipals(
  serviceId: string,
  change: { add: string[]; remove: string[] },
  client: EC2Client = ec2Client,
): Promise<void> {
  for (let i = 0; i < change.add.length; i += MODIFY_BATCH_SIZE) {
    await client.send(new ModifyVpcEndpointServicePermissionsCommand({ ServiceId: serviceId, AddAllowedPrincipals: change.add.slice(i, i + MODIFY_BATCH_SIZE) }));
  }
  for (let i = 0; i < change.remove.length; i += MODIFY_BATCH_SIZE) {
    await client.send(
      new ModifyVpcEndpointServicePermissionsCommand({ ServiceId: serviceId, RemoveAllowedPrincipals: change.remove.slice(i, i + MODIFY_BATCH_SIZE) }),
    );
  }
}
