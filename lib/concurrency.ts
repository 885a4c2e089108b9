/**
 * Runs `task` for every item, at most `limit` at a time. After the first
 * failure no further item is started; the ones running are waited for, and the
 * first error is thrown.
 */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const failures = await runConcurrently(items, limit, task, { stopAtFirstFailure: true });
  if (failures[0]) throw failures[0].error;
}

/**
 * Runs `task` for every item, at most `limit` at a time, whatever happens to the
 * others, and answers the items whose task threw, with the error.
 */
export async function forEachSettled<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<{ item: T; error: unknown }[]> {
  return runConcurrently(items, limit, task, { stopAtFirstFailure: false });
}

async function runConcurrently<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
  { stopAtFirstFailure }: { stopAtFirstFailure: boolean },
): Promise<{ item: T; error: unknown }[]> {
  let next = 0;
  const failures: { item: T; error: unknown }[] = [];
  const worker = async () => {
    while (!(stopAtFirstFailure && failures.length) && next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (error) {
        failures.push({ item, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return failures;
}
