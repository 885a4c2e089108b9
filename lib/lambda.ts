import type { Context } from 'aws-lambda';
import { logger } from './logger';
import { publishMetrics } from './metrics';

/**
 * Wraps a Lambda handler in what every function shares: its log entries carry the invocation's
 * context (request id, function, cold start) and the keys it appended, its own even when
 * invocations run at once in one process; with
 * `metrics`, the counts it added are written when it returns or throws.
 */
export function lambdaHandler<TEvent, TResult>(
  handler: (event: TEvent, context: Context) => Promise<TResult>,
  options: { metrics?: boolean } = {},
): (event: TEvent, context: Context) => Promise<TResult> {
  return (event, context) =>
    logger.runInvocation(context, async () => {
      try {
        return await handler(event, context);
      } finally {
        if (options.metrics) publishMetrics();
      }
    });
}
