import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import type { AccountStatus, OrganizationNode } from '../domain/organization';
import type { OrganizationsApi } from '../engine/ports';
import { config } from '../config';
import { assumedRoleCredentials } from './assumed-role';

/**
 * The Organizations client, made on first use. The SDK modules are imported
 * only then (dynamic import), so that functions whose policies never name an OU
 * or an organization do not pay for loading them at cold start. With
 * ORGANIZATIONS_ROLE_ARN it signs with the role's credentials from STS
 * AssumeRole (ORGANIZATIONS_EXTERNAL_ID when the role's trust asks for one),
 * renewed before they expire; without it, with the function's own.
 */
let shared: Promise<OrganizationsClient> | undefined;
export function organizationsClient(): Promise<OrganizationsClient> {
  shared ??= createClient().catch((error: unknown) => {
    shared = undefined;
    throw error;
  });
  return shared;
}

async function createClient(): Promise<OrganizationsClient> {
  const { OrganizationsClient } = await import('@aws-sdk/client-organizations');
  const { AWS_MAX_ATTEMPTS: maxAttempts, ORGANIZATIONS_ROLE_ARN: roleArn, ORGANIZATIONS_EXTERNAL_ID: externalId, AWS_REGION: region } = config();
  // Organizations has one endpoint per partition (us-east-1, cn-northwest-1, us-gov-west-1): given
  // the function's own Region, the SDK's endpoint rules pick its partition's, and the signing Region.
  if (!roleArn) return new OrganizationsClient({ maxAttempts, region });
  return new OrganizationsClient({ maxAttempts, region, credentials: assumedRoleCredentials({ roleArn, externalId, maxAttempts }) });
}

/**
 * At most this many Organizations calls of this container in flight at once.
 * Organizations allows few requests per second: a burst of notifications that
 * all miss the cache queues here, and the SDK's retries back off on the
 * throttling that is left, instead of every invocation failing at once.
 */
const MAX_CALLS_IN_FLIGHT = 2;
let callsInFlight = 0;
const queued: (() => void)[] = [];

async function limited<T>(call: () => Promise<T>): Promise<T> {
  while (callsInFlight >= MAX_CALLS_IN_FLIGHT) await new Promise<void>((resume) => queued.push(resume));
  callsInFlight++;
  try {
    return await call();
  } finally {
    callsInFlight--;
    queued.shift()?.();
  }
}

/** Organizations reports an account's Status as ACTIVE, SUSPENDED or PENDING_CLOSURE. */
function statusOf(account: { Status?: string; State?: string }): AccountStatus {
  const status = account.Status ?? account.State;
  return status === 'ACTIVE' || status === 'PENDING_CLOSURE' ? status : 'SUSPENDED';
}

/**
 * AWS Organizations' read calls through the client (made on first use), every
 * page of each listing. The walk and the reading of accounts one by one are
 * the engine's (lib/engine/memberships.ts).
 */
export function organizationsApi(client?: OrganizationsClient): OrganizationsApi {
  const sdk = () => import('@aws-sdk/client-organizations');
  const organizations = async () => client ?? (await organizationsClient());
  return {
    async describeOrganization() {
      const { DescribeOrganizationCommand } = await sdk();
      const { Organization } = await limited(async () => (await organizations()).send(new DescribeOrganizationCommand({})));
      if (!Organization?.Id) throw new Error('DescribeOrganization returned no organization id');
      return { id: Organization.Id };
    },
    async listRoots() {
      const { paginateListRoots } = await sdk();
      const roots: OrganizationNode[] = [];
      for await (const page of paginateListRoots({ client: await organizations() }, {})) {
        for (const root of page.Roots ?? []) if (root.Id) roots.push({ id: root.Id, name: root.Name ?? 'Root' });
      }
      return roots;
    },
    async listUnits(parentId) {
      const { paginateListOrganizationalUnitsForParent } = await sdk();
      const units: OrganizationNode[] = [];
      for await (const page of paginateListOrganizationalUnitsForParent({ client: await organizations() }, { ParentId: parentId })) {
        for (const unit of page.OrganizationalUnits ?? []) if (unit.Id) units.push({ id: unit.Id, name: unit.Name ?? unit.Id });
      }
      return units;
    },
    async listAccountsIn(parentId) {
      const { paginateListAccountsForParent } = await sdk();
      const accounts: { id: string; status: AccountStatus }[] = [];
      for await (const page of paginateListAccountsForParent({ client: await organizations() }, { ParentId: parentId })) {
        for (const account of page.Accounts ?? []) if (account.Id) accounts.push({ id: account.Id, status: statusOf(account) });
      }
      return accounts;
    },
    async listAccounts() {
      const { paginateListAccounts } = await sdk();
      const accounts: { id: string; status: AccountStatus }[] = [];
      for await (const page of paginateListAccounts({ client: await organizations() }, {})) {
        for (const account of page.Accounts ?? []) if (account.Id) accounts.push({ id: account.Id, status: statusOf(account) });
      }
      return accounts;
    },
    async describeAccount(accountId) {
      const { DescribeAccountCommand, AccountNotFoundException } = await sdk();
      try {
        const { Account } = await limited(async () => (await organizations()).send(new DescribeAccountCommand({ AccountId: accountId })));
        if (!Account) throw new Error(`DescribeAccount returned nothing for ${accountId}`);
        return { status: statusOf(Account) };
      } catch (error) {
        if (error instanceof AccountNotFoundException) return undefined;
        throw error;
      }
    },
    async parentOf(childId) {
      const { ListParentsCommand } = await sdk();
      const parent = (await limited(async () => (await organizations()).send(new ListParentsCommand({ ChildId: childId })))).Parents?.[0]?.Id;
      if (!parent) throw new Error(`ListParents returned no parent for ${childId}`);
      return parent;
    },
    async describeUnit(unitId) {
      const { DescribeOrganizationalUnitCommand } = await sdk();
      const { OrganizationalUnit } = await limited(async () =>
        (await organizations()).send(new DescribeOrganizationalUnitCommand({ OrganizationalUnitId: unitId })),
      );
      return { id: unitId, name: OrganizationalUnit?.Name ?? unitId };
    },
  };
}

/** Forgets the client (the local stack's reset). */
export function forgetOrganizationsClient(): void {
  shared = undefined;
}
