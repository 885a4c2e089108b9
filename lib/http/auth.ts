import { ForbiddenError, UnauthorizedError } from '../errors';
import { header, type HttpApiEvent } from './request';

/** Who is calling, as the API Gateway authorizer established it. Never taken from the body. */
export interface Caller {
  /** The IAM user or role ARN (IAM authorization), or the JWT subject. */
  principal: string;
  /** The caller's groups (JWT only). */
  groups: string[];
  via: 'iam' | 'jwt';
}

/** What GET /me answers: who the caller is, and whether they may write. */
export interface CallerView extends Caller {
  role: 'approver' | 'viewer';
}

/** Who may write: principal ARNs (a role's ARN also stands for its sessions) and JWT groups. */
export interface Approvers {
  principals: string[];
  groups: string[];
}

/**
 * The caller from the request context: the IAM authorizer's userArn, or the JWT
 * authorizer's `sub` claim. A request that reached the function without either
 * is refused (a route deployed without an authorizer fails closed).
 */
export function callerOf(event: HttpApiEvent, groupsClaim: string): Caller {
  const { iam, jwt } = event.requestContext.authorizer ?? {};
  if (iam?.userArn) return { principal: iam.userArn, groups: [], via: 'iam' };
  const subject = jwt?.claims.sub;
  if (typeof subject === 'string' && subject && jwt) return { principal: subject, groups: groupsOf(event, jwt.claims, groupsClaim), via: 'jwt' };
  throw new UnauthorizedError('the request carries no authenticated identity; sign it with SigV4');
}

/** Refuses (403) a caller who is not an approver. */
export function requireApprover(caller: Caller, approvers: Approvers): void {
  const allowed =
    caller.via === 'iam'
      ? approvers.principals.some((principal) => principal === caller.principal || isSessionOfRole(caller.principal, principal))
      : caller.groups.some((group) => approvers.groups.includes(group));
  if (!allowed) throw new ForbiddenError(`${caller.principal} is not an approver: only approvers may accept, reject, revoke, plan or change policies`);
}

const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/;
const ASSUMED_ROLE_ARN = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/;

/** `arn:aws:sts::123456789012:assumed-role/Approvers/alice` is a session of `arn:aws:iam::123456789012:role/Approvers`. */
function isSessionOfRole(callerArn: string, roleArn: string): boolean {
  const session = ASSUMED_ROLE_ARN.exec(callerArn);
  const role = ROLE_ARN.exec(roleArn);
  return Boolean(session && role && session[1] === role[1] && session[2] === role[2] && session[3] === role[3]);
}

/**
 * The caller's groups, each a whole name as the token gives it, so that a name
 * can only ever match itself. A real array is taken as it is, and a plain string
 * is one group. API Gateway hands an array claim over flattened, `"[a b]"`,
 * which cannot tell the groups `not admins` and `admins` from `not` and
 * `admins`. So the flattened form is read from the token itself: the
 * Authorization header holds the token API Gateway verified (the authorizer's
 * identity source), and its claims are used only when they are the ones API
 * Gateway passed on. Without it, only a flattened claim with one name and no
 * space is read; anything else grants no group (fail closed).
 */
function groupsOf(event: HttpApiEvent, claims: Record<string, unknown>, claimName: string): string[] {
  const claim = claims[claimName];
  if (Array.isArray(claim)) return claim.filter((group): group is string => typeof group === 'string');
  if (typeof claim !== 'string') return [];
  if (!(claim.startsWith('[') && claim.endsWith(']'))) return [claim];
  const fromToken = groupsInVerifiedToken(event, claims, claimName, claim);
  if (fromToken) return fromToken;
  const flattened = claim.slice(1, -1);
  return flattened && !/\s/.test(flattened) ? [flattened] : [];
}

/** The groups array of the token in the Authorization header, if it is the token whose claims API Gateway passed on. */
function groupsInVerifiedToken(event: HttpApiEvent, claims: Record<string, unknown>, claimName: string, flattened: string): string[] | undefined {
  const token = header(event, 'authorization')?.replace(/^Bearer\s+/i, '');
  const [, payload, ...rest] = token?.split('.') ?? [];
  if (payload === undefined || rest.length !== 1) return undefined;
  let tokenClaims: unknown;
  try {
    tokenClaims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof tokenClaims !== 'object' || tokenClaims === null) return undefined;
  const given = tokenClaims as Record<string, unknown>;
  const sameToken = ['sub', 'iss', 'iat', 'exp', 'jti'].every((name) => claims[name] === undefined || String(given[name]) === String(claims[name]));
  const groups = given[claimName];
  if (!sameToken || !Array.isArray(groups) || !groups.every((group): group is string => typeof group === 'string')) return undefined;
  return `[${groups.join(' ')}]` === flattened ? groups : undefined;
}
