import { ForbiddenError, UnauthorizedError } from '../errors';
import type { HttpApiEvent } from './request';

/** Who is calling, as the API Gateway authorizer established it. Never taken from the body. */
export interface Caller {
  /** The IAM user or role ARN (IAM authorization), or the JWT subject. */
  principal: string;
  /** The caller's groups (JWT only). */
  groups: string[];
  via: 'iam' | 'jwt';
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
  if (typeof subject === 'string' && subject) return { principal: subject, groups: groupsOf(jwt?.claims[groupsClaim]), via: 'jwt' };
  throw new UnauthorizedError('the request carries no authenticated identity; sign it with SigV4');
}

/** Refuses (403) a caller who is not an approver. */
export function requireApprover(caller: Caller, approvers: Approvers): void {
  const allowed =
    caller.via === 'iam'
      ? approvers.principals.some((principal) => principal === caller.principal || isSessionOfRole(caller.principal, principal))
      : caller.groups.some((group) => approvers.groups.includes(group));
  if (!allowed) throw new ForbiddenError(`${caller.principal} is not an approver: only approvers may accept, reject or change policies`);
}

const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/;
const ASSUMED_ROLE_ARN = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/;

/** `arn:aws:sts::123456789012:assumed-role/Approvers/alice` is a session of `arn:aws:iam::123456789012:role/Approvers`. */
function isSessionOfRole(callerArn: string, roleArn: string): boolean {
  const session = ASSUMED_ROLE_ARN.exec(callerArn);
  const role = ROLE_ARN.exec(roleArn);
  return Boolean(session && role && session[1] === role[1] && session[2] === role[2] && session[3] === role[3]);
}

/** API Gateway hands a JWT array claim over as "[a b]"; a token may also carry a real array or one string. */
function groupsOf(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.filter((group): group is string => typeof group === 'string');
  if (typeof claim !== 'string') return [];
  const text = claim.startsWith('[') && claim.endsWith(']') ? claim.slice(1, -1) : claim;
  return text.split(/[\s,]+/).filter(Boolean);
}
