/**
 * Runs `task` for every item, at most `limit` at a time, whatever happens to the
 * others, and answers the items whose task threw, with the error.
 */
export async function forEachSettled<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<{ item: T; error: unknown }[]> {
  let next = 0;
  const failures: { item: T; error: unknown }[] = [];
  const worker = async () => {
    while (next < items.length) {
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
