import middy, { type MiddyfiedHandler } from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Context } from 'aws-lambda';
import { logger } from './logger';

/** Wraps a Lambda handler in the middleware every function shares. */
export function middyfy<TEvent, TResult>(
  handler: (event: TEvent, context: Context) => Promise<TResult>,
): MiddyfiedHandler<TEvent, TResult, Error, Context> {
  return middy<TEvent, TResult, Error, Context>(handler).use(injectLambdaContext(logger, { resetKeys: true }));
}
