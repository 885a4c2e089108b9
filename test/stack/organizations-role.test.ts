import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { inlinePolicies, PACKAGE_TIMEOUT_MS, packageStack, readTemplate, removePackages, repoRoot, type Statement, type Template } from './package-stack';

// The read-only role for Organizations (stack/organizations-read-role.yml), and what the
// packaged stage may do with Organizations and with its services' permissions.

const { READ_ACTIONS } = createRequire(import.meta.url)(join(repoRoot, 'stack', 'organizations.cjs')) as { READ_ACTIONS: string[] };
const ROLE_ARN = 'arn:aws:iam::111111111111:role/vpce-gatekeeper-organizations-read';

/** The Organizations operations lib/aws/organizations-gateway.ts calls, as IAM actions. */
async function operationsTheGatewayCalls(): Promise<string[]> {
  const source = await readFile(join(repoRoot, 'lib', 'aws', 'organizations-gateway.ts'), 'utf8');
  const commands = [...source.matchAll(/(\w+)Command\(/g)].map((match) => match[1] ?? '');
  const paginated = [...source.matchAll(/paginate(\w+)\(/g)].map((match) => match[1] ?? '');
  return [...new Set([...commands, ...paginated])]
    .filter((name) => name !== 'AssumeRole')
    .map((name) => `organizations:${name}`)
    .sort();
}

describe('the read-only role for Organizations (stack/organizations-read-role.yml)', () => {
  let text: string;
  let template: {
    Parameters: Record<string, { Default?: string }>;
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  beforeAll(async () => {
    text = await readFile(join(repoRoot, 'stack', 'organizations-read-role.yml'), 'utf8');
    template = parse(text) as typeof template;
  });

  it('creates one IAM role and nothing else', () => {
    expect(Object.values(template.Resources).map((resource) => resource.Type)).toEqual(['AWS::IAM::Role']);
  });

  it('grants exactly the Organizations read calls the gateway makes, and only Describe* and List*', async () => {
    const role = template.Resources.OrganizationsReadRole?.Properties as { Policies: { PolicyDocument: { Statement: Statement[] } }[] };
    const statements = role.Policies.flatMap((policy) => policy.PolicyDocument.Statement);
    const actions = statements.flatMap((statement) => statement.Action).sort();
    expect(actions).toEqual(await operationsTheGatewayCalls());
    expect(actions).toEqual([...READ_ACTIONS].sort());
    for (const action of actions) expect(action).toMatch(/^organizations:(Describe|List)\w+$/);
    expect(statements.every((statement) => statement.Effect === 'Allow')).toBe(true);
  });

  it("is trusted only by the stage's function roles, with the external id when one is given", () => {
    const role = template.Resources.OrganizationsReadRole?.Properties as { AssumeRolePolicyDocument: { Statement: Statement[] } };
    const [trust, ...others] = role.AssumeRolePolicyDocument.Statement;
    expect(others).toEqual([]);
    expect(trust).toMatchObject({
      Effect: 'Allow',
      Action: 'sts:AssumeRole',
      Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${GatekeeperAccountId}:root' } },
    });
    const functionRoles = { 'aws:PrincipalArn': { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${GatekeeperAccountId}:role/vpce-gatekeeper/${GatekeeperStage}/*' } };
    expect(trust?.Condition).toEqual({
      'Fn::If': ['HasExternalId', { ArnLike: functionRoles, StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } } }, { ArnLike: functionRoles }],
    });
  });

  it('names no account and exports nothing, so that a StackSet can deploy it anywhere', () => {
    expect(text).not.toMatch(/\b\d{12}\b/);
    expect(text).not.toMatch(/Export:/);
    expect(template.Parameters.RoleName?.Default).toBe('vpce-gatekeeper-organizations-read');
  });
});

describe('the packaged stage, reading the organization through a role', () => {
  let template: Template;

  beforeAll(async () => {
    template = await readTemplate(
      await packageStack(['serviceIds=vpce-svc-0123456789abcdef0', `organizationsRoleArn=${ROLE_ARN}`, 'organizationCacheTtl=PT5M']),
    );
  }, PACKAGE_TIMEOUT_MS);

  afterAll(removePackages);

  const statementsOf = (roleName: string): Statement[] => inlinePolicies(template, roleName).flatMap((policy) => policy.Statement);
  const roles = ['OnConnectionNotificationRole', 'ReconcileRole', 'ApprovalsApiRole'];

  it('lets every function assume that role and no other, and call no Organizations API itself', () => {
    for (const role of roles) {
      const statements = statementsOf(role);
      expect(statements.filter((statement) => [statement.Action].flat().includes('sts:AssumeRole'))).toEqual([
        { Sid: 'ReadOrganizationThroughRole', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: ROLE_ARN },
      ]);
      expect(statements.flatMap((statement) => statement.Action).filter((action) => action.startsWith('organizations:'))).toEqual([]);
    }
  });

  it('hands the role, the external id and the cache TTL to every function', () => {
    for (const name of ['OnConnectionNotificationLambdaFunction', 'ReconcileLambdaFunction', 'ApprovalsApiLambdaFunction']) {
      const { Variables } = template.Resources[name]?.Properties.Environment as { Variables: Record<string, unknown> };
      expect(Variables).toMatchObject({ ORGANIZATIONS_ROLE_ARN: ROLE_ARN, ORGANIZATIONS_EXTERNAL_ID: '', ORGANIZATION_CACHE_TTL: 'PT5M' });
    }
  });

  it("allows the services' permissions to be read and changed only by the reconciler, and only on the services tagged managed", () => {
    for (const role of roles) {
      const sharing = statementsOf(role).filter((statement) => [statement.Action].flat().some((action) => action.includes('VpcEndpointServicePermissions')));
      if (role !== 'ReconcileRole') {
        expect(sharing).toEqual([]);
        continue;
      }
      expect(sharing).toEqual([
        {
          Sid: 'DecideOnManagedServices',
          Effect: 'Allow',
          Action: [
            'ec2:AcceptVpcEndpointConnections',
            'ec2:RejectVpcEndpointConnections',
            'ec2:DescribeVpcEndpointServicePermissions',
            'ec2:ModifyVpcEndpointServicePermissions',
            'ec2:CreateVpcEndpointConnectionNotification',
          ],
          Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-endpoint-service/*' },
          Condition: { StringEquals: { 'aws:ResourceTag/vpce-gatekeeper:managed': 'true' } },
        },
      ]);
    }
  });
});
