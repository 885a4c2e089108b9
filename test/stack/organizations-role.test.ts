import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The read-only role for Organizations (stack/organizations-read-role.yml), and what the
// packaged stage may do with Organizations and with its services' permissions.

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const { READ_ACTIONS } = createRequire(import.meta.url)(join(repoRoot, 'stack', 'organizations.cjs')) as { READ_ACTIONS: string[] };
const ROLE_ARN = 'arn:aws:iam::111111111111:role/vpce-gatekeeper-organizations-read';

interface Statement {
  Sid?: string;
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

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
    const functionRoles = { 'aws:PrincipalArn': { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${GatekeeperAccountId}:role/vpce-gatekeeper-${GatekeeperStage}-*' } };
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
  const tempDirs: string[] = [];
  let resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;

  beforeAll(async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-package-'));
    tempDirs.push(outDir);
    const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    for (const name of ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) delete env[name];
    const serverlessBin = join(repoRoot, 'node_modules', 'serverless', 'bin', 'serverless.js');
    const args = [serverlessBin, 'package', '--stage', 'test', '--package', outDir];
    args.push('--param=serviceIds=vpce-svc-0123456789abcdef0', `--param=organizationsRoleArn=${ROLE_ARN}`, '--param=organizationCacheTtl=PT5M');
    await promisify(execFile)(process.execPath, args, { cwd: repoRoot, env, maxBuffer: 16 * 1024 * 1024 });
    const template = JSON.parse(await readFile(join(outDir, 'cloudformation-template-update-stack.json'), 'utf8')) as { Resources: typeof resources };
    resources = template.Resources;
  }, 180_000);

  afterAll(async () => {
    await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  const statementsOf = (roleName: string): Statement[] => {
    const role = resources[roleName]?.Properties as { Policies: { PolicyDocument: { Statement: Statement[] } }[] };
    return role.Policies.flatMap((policy) => policy.PolicyDocument.Statement);
  };
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
      const { Variables } = resources[name]?.Properties.Environment as { Variables: Record<string, unknown> };
      expect(Variables).toMatchObject({ ORGANIZATIONS_ROLE_ARN: ROLE_ARN, ORGANIZATIONS_EXTERNAL_ID: '', ORGANIZATION_CACHE_TTL: 'PT5M' });
    }
  });

  it("allows the services' permissions to be read and changed only by the reconciler, and only on the managed services", () => {
    const serviceArn = { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-endpoint-service/vpce-svc-0123456789abcdef0' };
    for (const role of roles) {
      const sharing = statementsOf(role).filter((statement) => [statement.Action].flat().some((action) => action.includes('VpcEndpointServicePermissions')));
      if (role !== 'ReconcileRole') {
        expect(sharing).toEqual([]);
        continue;
      }
      expect(sharing).toEqual([
        {
          Sid: 'ShareManagedServices',
          Effect: 'Allow',
          Action: ['ec2:DescribeVpcEndpointServicePermissions', 'ec2:ModifyVpcEndpointServicePermissions'],
          Resource: [serviceArn],
        },
      ]);
    }
  });
});
