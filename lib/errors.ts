/** Input that fails validation: a malformed notification, body or id. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    message: string,
    readonly details?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The thing asked for does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

/** Another writer got there first, or the state does not allow the action. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** The caller could not be identified: no authenticated identity reached the function. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
}

/** The caller is known but not allowed to do this. */
export class ForbiddenError extends Error {
  override readonly name = 'ForbiddenError';
}

/** A conditional write named a version that is no longer the current one (If-Match). */
export class PreconditionFailedError extends Error {
  override readonly name = 'PreconditionFailedError';
}

/** A stored policy that no longer validates: nothing is decided by it until a valid version replaces it (fail closed). */
export class UnreadablePolicyError extends Error {
  override readonly name = 'UnreadablePolicyError';
}

/** A change to something that exists was asked for without naming the version it replaces. */
export class PreconditionRequiredError extends Error {
  override readonly name = 'PreconditionRequiredError';
}

/** The request body is not in a format the API reads. */
export class UnsupportedMediaTypeError extends Error {
  override readonly name = 'UnsupportedMediaTypeError';
}

/** The request body is larger than the API accepts. */
export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
}

/** EC2 refused or failed an action asked for through the API; recorded, and safe to ask again. */
export class ActionFailedError extends Error {
  override readonly name = 'ActionFailedError';
}

/** EC2 throttled an action asked for through the API; nothing is left claimed, and asking again shortly is safe. */
export class EC2ThrottledError extends Error {
  override readonly name = 'EC2ThrottledError';
}

/** A spoke could not be listed, so whether one of its services is managed (or where it lives) is not known. */
export class SpokeUnreachableError extends Error {
  override readonly name = 'SpokeUnreachableError';
}

/** A reconcile run that could not bring every service in line; thrown so that it counts as failed and is retried. */
export class ReconcileFailedError extends Error {
  override readonly name = 'ReconcileFailedError';
}


/** What went wrong, as every failure is described: in records, summaries, logs and batch results. */
export interface Failure {
  /** The error's name or AWS error code, such as RequestLimitExceeded or ConflictError. */
  code: string;
  message: string;
}

/** A thrown value as a Failure. */
export function describeError(error: unknown): Failure {
  if (error instanceof Error) return { code: error.name, message: error.message };
  return { code: 'Unknown', message: String(error) };
}

/** The error codes AWS answers a request refused by its rate limits with. */
const THROTTLING_CODES: ReadonlySet<string> = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
]);

/** Whether a failure is throttling: trying again later helps, splitting the request does not. */
export function isThrottling(failure: Failure): boolean {
  return THROTTLING_CODES.has(failure.code);
}
