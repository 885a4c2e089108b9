import type { OrganizationsClient } from '@aws-sdk/client-organizations';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { AccountStatus, Membership, OrganizationNode, OrganizationStructure } from '../domain/organization';
import { ROOT_ID } from '../domain/ids';
import { config } from '../config';

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
  return new OrganizationsClient({ maxAttempts, region, credentials: await assumedRoleCredentials(roleArn, externalId, maxAttempts) });
}

/** A credentials provider that assumes the role, and again a few minutes before the credentials expire. */
async function assumedRoleCredentials(
  roleArn: string,
  externalId: string | undefined,
  maxAttempts: number,
): Promise<() => Promise<AwsCredentialIdentity>> {
  const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/client-sts');
  const sts = new STSClient({ maxAttempts });
  let current: AwsCredentialIdentity | undefined;
  return async () => {
    if (current?.expiration && current.expiration.getTime() - Date.now() > 5 * 60_000) return current;
    const { Credentials } = await sts.send(
      new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'vpce-gatekeeper', ExternalId: externalId, DurationSeconds: 3600 }),
    );
    if (!Credentials?.AccessKeyId || !Credentials.SecretAccessKey) throw new Error(`STS AssumeRole of ${roleArn} returned no credentials`);
    current = {
      accessKeyId: Credentials.AccessKeyId,
      secretAccessKey: Credentials.SecretAccessKey,
      sessionToken: Credentials.SessionToken,
      expiration: Credentials.Expiration,
    };
    return current;
  };
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

/** The organization's id (DescribeOrganization), read once per container: it never changes. */
let organizationId: Promise<string> | undefined;
async function readOrganizationId(client: OrganizationsClient): Promise<string> {
  organizationId ??= (async () => {
    const { DescribeOrganizationCommand } = await import('@aws-sdk/client-organizations');
    const { Organization } = await limited(() => client.send(new DescribeOrganizationCommand({})));
    if (!Organization?.Id) throw new Error('DescribeOrganization returned no organization id');
    return Organization.Id;
  })().catch((error: unknown) => {
    organizationId = undefined;
    throw error;
  });
  return organizationId;
}

/** An OU's name and parent, as described; promises, so that concurrent reads of accounts in one OU describe it once. */
export type UnitCache = Map<string, Promise<OrganizationNode & { parentId: string }>>;

/**
 * One account's membership, read account by account: DescribeAccount and
 * ListParents, then each OU up to the root (DescribeOrganizationalUnit and
 * ListParents), unless `units` already has it: accounts of the same OU share
 * those calls. An account Organizations does not know is outside. Any other
 * failure throws: the caller decides what an unknown means.
 */
export async function readMembership(accountId: string, units: UnitCache, client?: OrganizationsClient): Promise<Membership> {
  const sdk = await import('@aws-sdk/client-organizations');
  const organizations = client ?? (await organizationsClient());
  const orgId = await readOrganizationId(organizations);
  let account;
  try {
    ({ Account: account } = await limited(() => organizations.send(new sdk.DescribeAccountCommand({ AccountId: accountId }))));
  } catch (error) {
    if (error instanceof sdk.AccountNotFoundException) return { kind: 'outside', accountId, organizationId: orgId, readAt: new Date().toISOString() };
    throw error;
  }
  if (!account) throw new Error(`DescribeAccount returned nothing for ${accountId}`);
  const parentOf = async (childId: string) => {
    const parent = (await limited(() => organizations.send(new sdk.ListParentsCommand({ ChildId: childId })))).Parents?.[0]?.Id;
    if (!parent) throw new Error(`ListParents returned no parent for ${childId}`);
    return parent;
  };
  const describeUnit = (unitId: string) => {
    let unit = units.get(unitId);
    if (!unit) {
      unit = (async () => {
        const { OrganizationalUnit } = await limited(() => organizations.send(new sdk.DescribeOrganizationalUnitCommand({ OrganizationalUnitId: unitId })));
        return { id: unitId, name: OrganizationalUnit?.Name ?? unitId, parentId: await parentOf(unitId) };
      })();
      units.set(unitId, unit);
      unit.catch(() => units.delete(unitId));
    }
    return unit;
  };
  const path: OrganizationNode[] = [];
  let parentId = await parentOf(accountId);
  for (let depth = 0; !ROOT_ID.test(parentId); depth++) {
    // Organizations nests OUs at most five deep; more means the answers loop.
    if (depth > 5) throw new Error(`the OU path of ${accountId} is deeper than Organizations allows`);
    const unit = await describeUnit(parentId);
    path.unshift({ id: unit.id, name: unit.name });
    parentId = unit.parentId;
  }
  path.unshift({ id: parentId, name: 'Root' });
  return { kind: 'member', accountId, organizationId: orgId, status: statusOf(account), path, readAt: new Date().toISOString() };
}

/**
 * The whole organization, read fresh: the root (ListRoots), then for each
 * parent one paged listing of its OUs and one of its accounts
 * (ListOrganizationalUnitsForParent, ListAccountsForParent).
 */
export async function readStructure(client?: OrganizationsClient): Promise<OrganizationStructure> {
  const sdk = await import('@aws-sdk/client-organizations');
  const organizations = client ?? (await organizationsClient());
  const orgId = await readOrganizationId(organizations);
  const roots = [];
  for await (const page of sdk.paginateListRoots({ client: organizations }, {})) roots.push(...(page.Roots ?? []));
  const rootId = roots[0]?.Id;
  if (!rootId) throw new Error('ListRoots returned no root');
  const structure: OrganizationStructure = {
    organizationId: orgId,
    root: { id: rootId, name: roots[0]?.Name ?? 'Root' },
    units: new Map(),
    accounts: new Map(),
    readAt: new Date().toISOString(),
  };
  const parents = [rootId];
  for (let parentId = parents.shift(); parentId !== undefined; parentId = parents.shift()) {
    for await (const page of sdk.paginateListOrganizationalUnitsForParent({ client: organizations }, { ParentId: parentId })) {
      for (const unit of page.OrganizationalUnits ?? []) {
        if (!unit.Id) continue;
        structure.units.set(unit.Id, { id: unit.Id, name: unit.Name ?? unit.Id, parentId });
        parents.push(unit.Id);
      }
    }
    for await (const page of sdk.paginateListAccountsForParent({ client: organizations }, { ParentId: parentId })) {
      for (const account of page.Accounts ?? []) if (account.Id) structure.accounts.set(account.Id, { status: statusOf(account), parentId });
    }
  }
  return structure;
}

/** Forgets what this container learned (for tests). */
export function forgetOrganization(): void {
  shared = undefined;
  organizationId = undefined;
}
