import { ValidationError } from '../../lib/errors';
import { parseSpoke, SPOKE_MESSAGE, type Spoke } from '../../lib/domain/spokes';

/** The account and Region the local stack runs in, as a deployed hub runs in its own. */
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_LOCATION: Spoke = { accountId: LOCAL_ACCOUNT_ID, region: LOCAL_REGION };

/** The name of the role stack/spoke.yml creates for stage `local`, the same in every spoke account. */
export const LOCAL_SPOKE_ROLE_NAME = 'vpce-gatekeeper-local-spoke';
/** The external id the local spoke roles ask for (the stage parameter spokeExternalId). */
export const LOCAL_SPOKE_EXTERNAL_ID = 'vpce-gatekeeper-local-spoke';
/** What stack/spoke.yml names the topic of each spoke, for stage `local`. */
export const LOCAL_SPOKE_TOPIC_NAME = 'vpce-gatekeeper-local-spoke-notifications';

/** `account/region`: how the simulators key what is per account and Region (rate limits, calls). */
export function locationKey({ accountId, region }: Spoke): string {
  return `${accountId}/${region}`;
}

export function sameLocation(a: Spoke, b: Spoke): boolean {
  return a.accountId === b.accountId && a.region === b.region;
}

/** The spoke role's ARN in an account. */
export function spokeRoleArn(accountId: string): string {
  return `arn:aws:iam::${accountId}:role/${LOCAL_SPOKE_ROLE_NAME}`;
}

/**
 * The local stack's spokes from `--spokes` (or SPOKES): `account:region,…`. Its own account and
 * Region always come first, whether named or not; duplicates are dropped. Throws naming each bad entry.
 */
export function parseSpokeList(raw: string | undefined): Spoke[] {
  const entries = (raw ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  const invalid = entries.filter((entry) => !parseSpoke(entry));
  if (invalid.length) throw new ValidationError(`spokes: ${invalid.map((entry) => `'${entry}'`).join(', ')} ${SPOKE_MESSAGE}`);
  const spokes = [LOCAL_LOCATION];
  for (const spoke of entries.map((entry) => parseSpoke(entry) as Spoke)) {
    if (!spokes.some((known) => sameLocation(known, spoke))) spokes.push(spoke);
  }
  return spokes;
}
