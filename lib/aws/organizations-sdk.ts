/**
 * The parts of the Organizations and STS clients the gateway uses, loaded with one
 * dynamic import of this module. Importing the packages themselves dynamically
 * keeps every export (each command, paginator and schema) in the bundle; named
 * imports here let esbuild drop the rest, and nothing of it is evaluated at cold start.
 */
export {
  AccountNotFoundException,
  DescribeAccountCommand,
  DescribeOrganizationCommand,
  DescribeOrganizationalUnitCommand,
  ListParentsCommand,
  OrganizationsClient,
  paginateListAccountsForParent,
  paginateListOrganizationalUnitsForParent,
  paginateListRoots,
} from '@aws-sdk/client-organizations';
export { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
