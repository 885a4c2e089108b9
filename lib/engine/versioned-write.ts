import { ConflictError } from '../errors';

/** One step of a versioned write: write the next version (and then answer `then`), or stop with `stop`. */
export type WriteStep<Item, T> = { write: Item; then: T } | { stop: T };

/** What a caller does when other writers keep getting there first. */
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

/** An item written only if it is still at the version that was read. */
export interface VersionedItem<Item> {
  read(): Promise<Item | undefined>;
  /** Writes `next` over `expected` (undefined: none yet); throws ConflictError when another writer got there first. */
  write(next: Item, expected: Item | undefined): Promise<void>;
}

/**
 * The one conditional-write helper, for every versioned item: connection
 * records, policies, admission places and shared principals. `step` gets the
 * latest item (undefined: none) and the attempt (1-based) and says what to
 * write; when another writer got there first, the item is read again and
 * `step` asked again, as the caller's conflict policy allows.
 */
export async function writeVersioned<Item, T>(
  item: VersionedItem<Item>,
  current: Item | undefined,
  step: (latest: Item | undefined, attempt: number) => WriteStep<Item, T> | Promise<WriteStep<Item, T>>,
  policy: ConflictPolicy,
): Promise<T | undefined> {
  let latest = current;
  for (let attempt = 1; ; attempt++) {
    const next = await step(latest, attempt);
    if ('stop' in next) return next.stop;
    try {
      await item.write(next.write, latest);
      return next.then;
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      if (attempt >= policy.attempts) {
        if (policy.whenExhausted === 'leave') return undefined;
        throw policy.message ? new ConflictError(policy.message, { cause: error }) : error;
      }
    }
    latest = await item.read();
  }
}
