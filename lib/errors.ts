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

/** Some connections could not be acted on; thrown so that the invocation is retried. */
export class RetryableActionError extends Error {
  override readonly name = 'RetryableActionError';
}
