'use strict';

/**
 * The stage, checked before anything is packaged. Every name in the stack is built from
 * `${self:service}-${sls:stage}`, and the longest must fit its service's limit:
 *
 *   vpce-gatekeeper-<stage>-on-connection-notification   a Lambda function name, at most 64
 *
 * so a stage has at most 64 - 43 = 21 characters (test/stack/template.test.ts packages one of 21
 * and checks every name). Letters, digits and hyphens, starting with a letter: the characters a
 * CloudFormation stack name, a queue, a topic and a function name all take.
 */

const MAX_STAGE_LENGTH = 21;
const STAGE = /^[A-Za-z][A-Za-z0-9-]*$/;

/** The stage given with --stage (default dev); throws, saying why, for one the stack's names cannot hold. */
function checkStage(stage) {
  if (!STAGE.test(stage)) {
    throw new Error(`stage "${stage}" must start with a letter and hold only letters, digits and hyphens: every name in the stack is built from it`);
  }
  if (stage.length > MAX_STAGE_LENGTH) {
    throw new Error(
      `stage "${stage}" has ${stage.length} characters; at most ${MAX_STAGE_LENGTH} fit, since the function vpce-gatekeeper-${stage}-on-connection-notification must stay within Lambda's 64`,
    );
  }
  return stage;
}

async function stage({ options }) {
  return checkStage(String(options.stage ?? 'dev'));
}

module.exports = { MAX_STAGE_LENGTH, checkStage, stage };
