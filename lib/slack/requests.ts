import { PayloadTooLargeError, UnauthorizedError, UnsupportedMediaTypeError, ValidationError } from '../errors';
import { MAX_SIGNATURE_AGE_SECONDS, verifySlackSignature } from './signature';

/** The largest interaction body read; Slack's payloads (a message and a modal's state) are far smaller. */
export const MAX_INTERACTION_BYTES = 256 * 1024;
/**
 * How long an accepted signature is remembered after its timestamp: past the
 * 5 minutes in which it could be accepted, with a minute to spare for clocks.
 */
const REMEMBER_SECONDS = 2 * MAX_SIGNATURE_AGE_SECONDS + 60;

export interface SlackRequest {
  /** Header names in lower case, as API Gateway's payload 2.0 gives them. */
  headers: Record<string, string | undefined>;
  /** The body exactly as Slack sent it: the signature covers these bytes. */
  body: Buffer;
}

/**
 * Refuses (UnauthorizedError, 401) a request Slack did not sign with the app's
 * signing secret, one signed more than 5 minutes from now, and one whose
 * signature was already accepted (a replay). Checked before anything else is
 * read, so that a refused request changes nothing.
 */
export async function authenticateSlackRequest(
  request: SlackRequest,
  deps: { signingSecret: string; remember: (signature: string, expiresAt: number, now: Date) => Promise<boolean>; now: Date },
): Promise<void> {
  const check = verifySlackSignature({
    signingSecret: deps.signingSecret,
    timestamp: request.headers['x-slack-request-timestamp'],
    signature: request.headers['x-slack-signature'],
    body: request.body,
    now: deps.now,
  });
  if (!check.ok) throw new UnauthorizedError(`not a request signed by Slack: ${check.why}`);
  if (!(await deps.remember(check.signature, check.timestamp + REMEMBER_SECONDS, deps.now))) {
    throw new UnauthorizedError('not a request signed by Slack: this signature was already received (a replayed request)');
  }
}

/** The interaction payload: form-encoded, its one field `payload` holding JSON. */
export function interactionPayload(request: SlackRequest): unknown {
  const mediaType = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/x-www-form-urlencoded') {
    throw new UnsupportedMediaTypeError(`the body must be application/x-www-form-urlencoded, as Slack sends it, not ${mediaType ? `'${mediaType}'` : 'without a content type'}`);
  }
  if (request.body.byteLength > MAX_INTERACTION_BYTES) {
    throw new PayloadTooLargeError(`the body is ${request.body.byteLength} bytes; the most accepted is ${MAX_INTERACTION_BYTES}`);
  }
  const payload = new URLSearchParams(request.body.toString('utf8')).get('payload');
  if (payload === null) throw new ValidationError('the body has no payload field');
  try {
    return JSON.parse(payload);
  } catch (error) {
    throw new ValidationError('the payload is not JSON', undefined, { cause: error });
  }
}
