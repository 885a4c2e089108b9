import middy, { type MiddyfiedHandler } from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { logger } from './logger';
import { metrics } from './metrics';

/**
 * Wraps a Lambda handler in the middleware every function shares. With
 * `metrics`, the metrics it added are flushed when it returns or throws.
 */
export function middyfy<TEvent, TResult>(
  handler: (event: TEvent, context: Context) => Promise<TResult>,
  options: { metrics?: boolean } = {},
): MiddyfiedHandler<TEvent, TResult, Error, Context> {
  const wrapped = middy<TEvent, TResult, Error, Context>(handler).use(injectLambdaContext(logger, { resetKeys: true }));
  return options.metrics ? wrapped.use(logMetrics(metrics)) : wrapped;
}
