import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
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

/** A JSON response. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
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

/** What an error becomes over HTTP. Anything unexpected is a 500 that says nothing about internals. */
export function errorResponse(error: unknown, requestId: string): HttpResponse {
  const known = STATUS_OF.find(([type]) => error instanceof type);
  if (known && error instanceof Error) {
    const [, status, code] = known;
    return json(status, { error: { code, message: error.message } });
  }
  return json(500, { error: { code: 'InternalError', message: `the request failed; quote request id ${requestId} when reporting it` } });
}
