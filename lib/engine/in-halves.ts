import { describeError, isThrottling, type Failure } from '../errors';
import { logger } from '../logger';

/**
 * One EC2 call for a batch of endpoints; a call that fails outright is tried
 * again in halves, down to single endpoints, so that one endpoint EC2 fails on
 * does not fail its healthy siblings: the half that succeeds is done, the half
 * that fails is split again. When both halves fail too, the failure is not one
 * endpoint's (a service or EC2 itself is failing): the batch fails as a whole
 * rather than cost a call per endpoint. Throttling is never split: it is the
 * account's rate, and more calls would only make it worse. Answers what the
 * calls that succeeded answered, and the failure of each endpoint no call
 * succeeded for.
 */
export async function inHalves<T>(endpointIds: string[], call: (endpointIds: string[]) => Promise<T>): Promise<{ answers: T[]; failed: Map<string, Failure> }> {
  const attempt = await tryCall(endpointIds, call);
  if ('answer' in attempt) return { answers: [attempt.answer], failed: new Map() };
  return split(endpointIds, attempt.failure, call);
}

async function split<T>(endpointIds: string[], failure: Failure, call: (endpointIds: string[]) => Promise<T>): Promise<{ answers: T[]; failed: Map<string, Failure> }> {
  const failAll = (ids: string[], why: Failure) => ({ answers: [] as T[], failed: new Map(ids.map((endpointId) => [endpointId, why])) });
  if (endpointIds.length <= 1 || isThrottling(failure)) return failAll(endpointIds, failure);
  logger.warn('EC2 failed a call; trying its halves', { size: endpointIds.length, ...failure });
  const half = Math.ceil(endpointIds.length / 2);
  const halves = [endpointIds.slice(0, half), endpointIds.slice(half)];
  const attempts = [];
  for (const ids of halves) attempts.push(await tryCall(ids, call));
  const [first, second] = attempts;
  if (first && second && 'failure' in first && 'failure' in second) {
    logger.error('EC2 failed both halves of a call; the batch fails as a whole', { size: endpointIds.length, ...second.failure });
    return { answers: [], failed: new Map([...failAll(halves[0] ?? [], first.failure).failed, ...failAll(halves[1] ?? [], second.failure).failed]) };
  }
  const result = { answers: [] as T[], failed: new Map<string, Failure>() };
  for (const [index, attempt] of attempts.entries()) {
    const ids = halves[index] ?? [];
    const part = 'answer' in attempt ? { answers: [attempt.answer], failed: new Map<string, Failure>() } : await split(ids, attempt.failure, call);
    result.answers.push(...part.answers);
    for (const [endpointId, why] of part.failed) result.failed.set(endpointId, why);
  }
  return result;
}

async function tryCall<T>(endpointIds: string[], call: (endpointIds: string[]) => Promise<T>): Promise<{ answer: T } | { failure: Failure }> {
  try {
    return { answer: await call(endpointIds) };
  } catch (error) {
    return { failure: describeError(error) };
  }
}
