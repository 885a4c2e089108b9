import { ApprovalsClient } from '../../cli/api-client';

/** The local stack's fixed principals, as the README documents them. */
export const LOCAL_APPROVER = { accessKeyId: 'LOCALAPPROVER', secretAccessKey: 'local-approver-secret' };
export const LOCAL_VIEWER = { accessKeyId: 'LOCALVIEWER', secretAccessKey: 'local-viewer-secret' };
export const LOCAL_APPROVER_ARN = 'arn:aws:iam::000000000000:user/local-approver';

/** A client of the local stack's approvals API that signs as `credentials` (us-east-1, execute-api). */
export function signedClient(baseUrl: string, credentials: { accessKeyId: string; secretAccessKey: string }): ApprovalsClient {
  return new ApprovalsClient({ baseUrl, auth: { kind: 'sigv4', region: 'us-east-1', credentials } });
}
