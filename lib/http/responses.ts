import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import { isThrottlingError } from '@smithy/core/retry';
import {
  ActionFailedError,
  ConflictError,
  EC2ThrottledError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  PreconditionFailedError,
  PreconditionRequiredError,
  UnauthorizedError,
  UnreadablePolicyError,
  UnsupportedMediaTypeError,
  ValidationError,
} from '../errors';

export type HttpResponse = APIGatewayProxyStructuredResultV2;

/** Every response says its content type is the one to use: a browser never sniffs JSON into HTML. */
export const NOSNIFF = { 'x-content-type-options': 'nosniff' } as const;

/** A JSON response. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { statusCode, headers: { 'content-type': 'application/json', ...NOSNIFF, ...headers }, body: JSON.stringify(body) };
}

/** The status and code each error maps to: the one place that says so. */
const STATUS_OF: [new (...args: never[]) => Error, number, string][] = [
  [ValidationError, 400, 'InvalidRequest'],
  [UnauthorizedError, 401, 'Unauthorized'],
  [ForbiddenError, 403, 'Forbidden'],
  [NotFoundError, 404, 'NotFound'],
  [ConflictError, 409, 'Conflict'],
  // A correct request that a stored policy which no longer validates prevents: replace that policy.
  [UnreadablePolicyError, 409, 'PolicyUnreadable'],
  [PreconditionFailedError, 412, 'PreconditionFailed'],
  [PayloadTooLargeError, 413, 'PayloadTooLarge'],
  [UnsupportedMediaTypeError, 415, 'UnsupportedMediaType'],
  [PreconditionRequiredError, 428, 'PreconditionRequired'],
  [ActionFailedError, 502, 'ActionFailed'],
  [EC2ThrottledError, 503, 'EC2Throttled'],
];

/** How long a throttled caller is asked to wait: EC2's Describe* buckets refill 20 tokens a second. */
const RETRY_AFTER_SECONDS = '1';

/**
 * What an error becomes over HTTP. An AWS call throttled on any route (its SDK
 * retries spent) is a 503 to try again shortly, not a failure of the request.
 * Anything else unexpected is a 500 that says nothing about internals.
 */
export function errorResponse(error: unknown, requestId: string): HttpResponse {
  const known = STATUS_OF.find(([type]) => error instanceof type);
  if (known && error instanceof Error) {
    const [, status, code] = known;
    return json(status, { error: { code, message: error.message } }, status === 503 ? { 'retry-after': RETRY_AFTER_SECONDS } : {});
  }
  const throttled = throttledBy(error);
  if (throttled) {
    const message = `${throttled.service} is throttling this stage's requests (${throttled.code}); try again shortly`;
    return json(503, { error: { code: throttled.service === 'EC2' ? 'EC2Throttled' : 'Throttled', message } }, { 'retry-after': RETRY_AFTER_SECONDS });
  }
  return json(500, { error: { code: 'InternalError', message: `the request failed; quote request id ${requestId} when reporting it` } });
}

/** The service and error code of an AWS SDK error that is throttling, as the SDK's own retry strategy classifies it. */
function throttledBy(error: unknown): { service: string; code: string } | undefined {
  if (!(error instanceof Error) || !('$metadata' in error) || !isThrottlingError(error as Parameters<typeof isThrottlingError>[0])) return undefined;
  return { service: error instanceof EC2ServiceException ? 'EC2' : 'AWS', code: error.name };
}
