import { MANAGED_TAG, type Spoke } from '../../lib/domain/spokes';
import { Ec2ApiError } from './ec2-errors';
import type { EndpointService } from './ec2-simulator';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION, LOCAL_SPOKE_ROLE_NAME } from './locations';
import type { LocalSts } from './sts-api';

/**
 * Who calls EC2, told apart as AWS tells them apart: the account by the credentials (the local
 * stack's own keys are the hub's account; temporary ones are the session of a role the local STS
 * issued), the Region by the request's SigV4 scope. And what IAM lets each of them do, as the
 * roles of serverless.yml and stack/spoke.yml say.
 */
export interface Ec2Caller extends Spoke {
  /** `hub`: the functions' own role. `spoke`: a session of a spoke's role. `other`: any other role's session. */
  kind: 'hub' | 'spoke' | 'other';
  /** The IAM principal, for error messages. */
  arn: string;
}

/** The caller of a request from its Authorization header; AuthFailure when it names no valid credentials. */
export function ec2CallerOf(authorization: string | undefined, sts: LocalSts): Ec2Caller {
  const scope = /Credential=([^/,\s]+)\/\d{8}\/([^/,\s]+)\/ec2\/aws4_request/.exec(authorization ?? '');
  if (!scope) throw new Ec2ApiError('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
  const [, accessKeyId = '', region = ''] = scope;
  if (!accessKeyId.startsWith('ASIA')) return { kind: 'hub', accountId: LOCAL_ACCOUNT_ID, region, arn: `arn:aws:iam::${LOCAL_ACCOUNT_ID}:role/vpce-gatekeeper/local/functions` };
  const session = sts.session(accessKeyId);
  if (!session) throw new Ec2ApiError('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
  if (session.expiresAt.getTime() <= Date.now()) throw new Ec2ApiError('AuthFailure', 'The security token included in the request is expired', 401);
  const roleName = session.roleArn.slice(session.roleArn.lastIndexOf('/') + 1);
  return {
    kind: roleName === LOCAL_SPOKE_ROLE_NAME ? 'spoke' : 'other',
    accountId: session.accountId,
    region,
    arn: `arn:aws:sts::${session.accountId}:assumed-role/${roleName}/${session.sessionName}`,
  };
}

/**
 * Whether IAM lets the caller call `action` on `service` (Accept, Reject, the service's
 * permissions, its connection notifications): the hub's functions on any service of their own
 * Region (the named ones, or all of them; which ones they manage is theirs to decide), a spoke's
 * role on the services tagged vpce-gatekeeper:managed=true (stack/spoke.yml names none locally).
 */
export function authorizeOnService(caller: Ec2Caller, action: string, service: EndpointService): void {
  const allowed =
    (caller.kind === 'hub' && service.region === LOCAL_REGION) || (caller.kind === 'spoke' && service.tags[MANAGED_TAG.key] === MANAGED_TAG.value);
  if (!allowed) throw unauthorized(caller, action, `arn:aws:ec2:${service.region}:${service.accountId}:vpc-endpoint-service/${service.serviceId}`);
}

/** Describe* on '*': the hub's functions and the spokes' role may; another role's session may not. */
export function authorizeDescribe(caller: Ec2Caller, action: string): void {
  if (caller.kind === 'other') throw unauthorized(caller, action, '*');
}

/** The spoke's role, while spokeUnavailable names its account and Region: it can do nothing. */
export function spokeUnreachable(caller: Ec2Caller, action: string): Ec2ApiError {
  return unauthorized(caller, action, '*');
}

function unauthorized(caller: Ec2Caller, action: string, resource: string): Ec2ApiError {
  return new Ec2ApiError(
    'UnauthorizedOperation',
    `You are not authorized to perform this operation. User: ${caller.arn} is not authorized to perform: ec2:${action} on resource: ${resource} because no identity-based policy allows the ec2:${action} action`,
    403,
  );
}
