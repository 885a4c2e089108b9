import { EC2Client } from '@aws-sdk/client-ec2';
import { config } from '../config';
import { partitionOf, type Spoke } from '../domain/spokes';
import { assumedRoleCredentials } from './assumed-role';
import { ec2Client } from './clients';

/**
 * EC2 in each spoke of the fleet: in the hub's own account and Region, the function's own client;
 * in every other spoke, a client in the spoke's Region signing with the spoke role's credentials
 * (stack/spoke.yml), assumed from STS in that Region and kept until a few minutes before they
 * expire. One client per spoke per container, so that each keeps its credentials.
 */

/** The hub's own account and Region (the account is unknown where HUB_ACCOUNT_ID is not set: tests). */
export function hubSpoke(): Spoke {
  const { HUB_ACCOUNT_ID, AWS_REGION } = config();
  return { accountId: HUB_ACCOUNT_ID ?? '', region: AWS_REGION };
}

/** Every spoke: the hub's own first, then the stage's `spokes`. */
export function fleetSpokes(): Spoke[] {
  const hub = hubSpoke();
  return [hub, ...config().SPOKES.filter((spoke) => !isSameSpoke(spoke, hub))];
}

export function isSameSpoke(a: Spoke, b: Spoke): boolean {
  return a.accountId === b.accountId && a.region === b.region;
}

/** `account/region`, as summaries and logs name a spoke. */
export function spokeKey({ accountId, region }: Spoke): string {
  return `${accountId}/${region}`;
}

const clients = new Map<string, EC2Client>();

/** The EC2 client that reaches a spoke. */
export function ec2ClientIn(spoke: Spoke): EC2Client {
  if (isSameSpoke(spoke, hubSpoke())) return ec2Client;
  const key = spokeKey(spoke);
  let client = clients.get(key);
  if (!client) {
    const { AWS_MAX_ATTEMPTS: maxAttempts, SPOKE_ROLE_NAME: roleName, SPOKE_EXTERNAL_ID: externalId } = config();
    if (!roleName) throw new Error('invalid configuration: SPOKE_ROLE_NAME environment variable is not set, and a spoke is configured');
    const roleArn = `arn:${partitionOf(spoke.region)}:iam::${spoke.accountId}:role/${roleName}`;
    client = new EC2Client({ region: spoke.region, maxAttempts, credentials: assumedRoleCredentials({ roleArn, externalId, region: spoke.region, maxAttempts }) });
    clients.set(key, client);
  }
  return client;
}

/** Forgets the spokes' clients and their credentials (the local stack's reset: containers start cold). */
export function forgetSpokeClients(): void {
  clients.clear();
}
