import type { ConnectionRecord } from './domain/connection';
import { getConnection, putConnection } from './aws/connection-store';
import { ConflictError } from './errors';

/** One step of a conditional update: write a new version of the record (and then answer `then`), or stop with `stop`. */
export type UpdateStep<T> = { write: ConnectionRecord; then: T } | { stop: T };

/** What a caller does when another writer keeps getting there first. */
export interface ConflictPolicy {
  /** Writes tried in all, the first included. */
  attempts: number;
  /**
   * After the last lost race: `throw` the ConflictError (an API caller answers 409,
   * a notification goes back to its queue), or `leave` the work to whoever wrote
   * (the reconciler's next run); `leave` answers undefined.
   */
  whenExhausted: 'throw' | 'leave';
  /** The message of the ConflictError thrown, when the caller wants to say more than "changed by another writer". */
  message?: string;
}

/**
 * Writes a connection record conditionally on the version it was read at; when
 * another writer got there first, reads the record again and asks `step` again.
 * `current` is the record as the caller last read it (undefined: none in the
 * table); `step` gets the latest record and the attempt (1-based).
 */
export async function updateConnection<T>(
  id: { serviceId: string; endpointId: string },
  current: ConnectionRecord | undefined,
  step: (latest: ConnectionRecord | undefined, attempt: number) => UpdateStep<T> | Promise<UpdateStep<T>>,
  policy: ConflictPolicy,
): Promise<T | undefined> {
  let latest = current;
  for (let attempt = 1; ; attempt++) {
    const next = await step(latest, attempt);
    if ('stop' in next) return next.stop;
    try {
      await putConnection(next.write, latest?.version);
      return next.then;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      if (attempt >= policy.attempts) {
        if (policy.whenExhausted === 'leave') return undefined;
        throw policy.message ? new ConflictError(policy.message, { cause: error }) : error;
      }
    }
    latest = await getConnection(id.serviceId, id.endpointId);
  }
}
