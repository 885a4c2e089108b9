import type { ConnectionState } from './connection';

/** An account's connections on one service, as EC2 shows them: id and state. */
export type AccountConnections = ReadonlyMap<string, ConnectionState>;

/**
 * The endpoints that hold one of an account's places under maxEndpointsPerAccount:
 * those EC2 shows admitted, and those reserved for an accept that may still be
 * under way (EC2 shows them pendingAcceptance or admitted, or they are newer than
 * what this reader saw of EC2: fail closed). A reservation whose connection EC2
 * shows gone anywhere else (rejected, deleted) gives its place back.
 */
export function placesTaken(reserved: readonly string[], ec2: AccountConnections): Set<string> {
  const taken = new Set<string>();
  for (const [endpointId, state] of ec2) if (isAdmittedOrWaiting(state, false)) taken.add(endpointId);
  for (const endpointId of reserved) {
    const state = ec2.get(endpointId);
    if (state === undefined || isAdmittedOrWaiting(state, true)) taken.add(endpointId);
  }
  return taken;
}

function isAdmittedOrWaiting(state: ConnectionState, reserved: boolean): boolean {
  return state === 'pending' || state === 'available' || (reserved && state === 'pendingAcceptance');
}
