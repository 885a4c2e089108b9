'use strict';

/**
 * Everything in the hub's stack that depends on its spokes: the (account, Region) pairs whose
 * endpoint services the hub decides, besides its own account and Region (docs/fleet.md).
 *
 * The list comes from the stage parameter `spokes`, comma-separated `account:region`:
 *
 *   serverless deploy --stage prod --param="spokes=222233334444:eu-west-1,555566667777:ap-southeast-2" \
 *     --param="spokeExternalId=…"
 *
 * Each spoke runs stack/spoke.yml (as a StackSet): a topic that delivers its connection
 * notifications into the hub's queue, and the role the hub assumes there. The names below are
 * the ones stack/spoke.yml gives them, built from the same stage; test/stack/spoke.test.ts
 * holds the two to each other. serverless.yml pulls these in through
 * `${file(./stack/spokes.cjs):<export>}`.
 */

const ACCOUNT_ID = /^\d{12}$/;
// Same rule as REGION in lib/domain/ids.ts.
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
// Same rule as the ExternalId parameter of stack/spoke.yml.
const EXTERNAL_ID = /^[\w+=,.@:/-]{2,256}$/;

/**
 * The most spokes a stage takes: each adds its topic to the queue policy (SQS allows a policy of
 * 8,192 bytes) and its entry to the functions' SPOKES variable (Lambda allows 4 KB of environment
 * variables in all, and serviceIds takes up to 1,079 of them); 30 keep both well under
 * (test/stack/fleet.test.ts).
 */
const MAX_SPOKES = 30;

/** Parses `account:region,…`; throws naming every entry that is not one. Duplicates are dropped. */
function parseSpokes(raw) {
  const entries = String(raw ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  const invalid = entries.filter((entry) => {
    const [accountId = '', region = '', ...rest] = entry.split(':');
    return rest.length > 0 || !ACCOUNT_ID.test(accountId) || !REGION.test(region);
  });
  if (invalid.length > 0) {
    throw new Error(`param "spokes" holds entries that are not account:region (such as 222233334444:eu-west-1): ${invalid.join(', ')}`);
  }
  const unique = [...new Set(entries)];
  if (unique.length > MAX_SPOKES) throw new Error(`param "spokes" names ${unique.length} spokes; a stage takes at most ${MAX_SPOKES}`);
  return unique.map((entry) => {
    const [accountId, region] = entry.split(':');
    return { accountId, region };
  });
}

/** The spokes' names, from the stage: what stack/spoke.yml calls its topic and its role. */
function spokeNames(service, stage) {
  return {
    topicName: `${service}-${stage}-spoke-notifications`,
    roleName: `${service}-${stage}-spoke`,
  };
}

async function resolved({ resolveVariable }) {
  const spokes = parseSpokes(await resolveVariable('param:spokes'));
  const externalId = String((await resolveVariable('param:spokeExternalId')) ?? '').trim();
  if (spokes.length > 0 && !EXTERNAL_ID.test(externalId)) {
    throw new Error(
      'param "spokeExternalId" must be set with "spokes": the ExternalId the spokes\' stack/spoke.yml was deployed with (2-256 characters of letters, digits and +=,.@:/-)',
    );
  }
  const names = spokeNames(await resolveVariable('self:service'), await resolveVariable('sls:stage'));
  return { spokes, externalId, ...names };
}

/** The spokes again, normalised, for the SPOKES environment variable. */
async function spokesVariable(context) {
  return (await resolved(context)).spokes.map(({ accountId, region }) => `${accountId}:${region}`).join(',');
}

/**
 * The topics allowed to send to the hub's notification queue (its policy's aws:SourceArn): the
 * hub's own inbound topic, and each spoke's.
 */
async function notificationTopicArns(context) {
  const { spokes, topicName } = await resolved(context);
  return [
    { Ref: 'NotificationsTopic' },
    ...spokes.map(({ accountId, region }) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:sns:${region}:${accountId}:${topicName}` })),
  ];
}

module.exports = { MAX_SPOKES, parseSpokes, spokeNames, spokesVariable, notificationTopicArns };
