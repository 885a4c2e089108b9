'use strict';

/**
 * The IAM statement that lets a function read the organization, for policies by OU and
 * organization (lib/aws/organizations-gateway.ts):
 * - with the stage parameter organizationsRoleArn: sts:AssumeRole on that role only (the
 *   read-only role of stack/organizations-read-role.yml, in the management or delegated
 *   administrator account);
 * - without it: the Organizations read calls themselves, for a stage deployed in the
 *   management or delegated administrator account.
 * serverless.yml pulls it in with `${file(./stack/organizations.cjs):readOrganization}`.
 */

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;

/** The Organizations calls the gateway makes; the read-only role's template grants the same. */
const READ_ACTIONS = [
  'organizations:DescribeOrganization',
  'organizations:DescribeAccount',
  'organizations:DescribeOrganizationalUnit',
  'organizations:ListParents',
  'organizations:ListRoots',
  'organizations:ListOrganizationalUnitsForParent',
  'organizations:ListAccountsForParent',
  'organizations:ListAccounts',
];

async function readOrganization({ resolveVariable }) {
  const roleArn = String((await resolveVariable('param:organizationsRoleArn')) ?? '').trim();
  if (roleArn) {
    if (!ROLE_ARN.test(roleArn)) throw new Error(`param "organizationsRoleArn" is not an IAM role ARN: ${roleArn}`);
    return { Sid: 'ReadOrganizationThroughRole', Effect: 'Allow', Action: 'sts:AssumeRole', Resource: roleArn };
  }
  // Organizations' read calls act on every account, OU and root: '*' is the narrowest there is.
  return { Sid: 'ReadOrganization', Effect: 'Allow', Action: READ_ACTIONS, Resource: '*' };
}

module.exports = { readOrganization, READ_ACTIONS };
