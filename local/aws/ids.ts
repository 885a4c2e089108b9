import { randomBytes, randomUUID } from 'node:crypto';

/** `prefix` followed by 17 lowercase hex digits, the shape of EC2 resource ids. */
export function ec2Id(prefix: 'vpce-svc-' | 'vpce-' | 'vpce-con-' | 'vpce-svc-perm-' | 'vpce-nfn-'): string {
  return prefix + randomBytes(9).toString('hex').slice(0, 17);
}

/** A request or message id in the UUID shape AWS uses. */
export function requestId(): string {
  return randomUUID();
}
