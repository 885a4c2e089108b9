import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Slack's request signing (version v0): `X-Slack-Signature` is `v0=` and the hex
 * HMAC-SHA256, keyed with the app's signing secret, of `v0:<timestamp>:<raw body>`,
 * where the timestamp is `X-Slack-Request-Timestamp` in Unix seconds.
 */

/** How far a request's timestamp may be from our clock, as Slack advises: 5 minutes. */
export const MAX_SIGNATURE_AGE_SECONDS = 5 * 60;

const TIMESTAMP = /^\d{1,12}$/;
const SIGNATURE = /^v0=[0-9a-f]{64}$/;

/** The `X-Slack-Signature` value for a body sent at `timestamp` (Unix seconds, as the header spells it). */
export function slackSignature(signingSecret: string, timestamp: string, body: Buffer | string): string {
  const mac = createHmac('sha256', signingSecret);
  mac.update(`v0:${timestamp}:`, 'utf8');
  mac.update(body);
  return `v0=${mac.digest('hex')}`;
}

export type SignatureCheck = { ok: true; signature: string; timestamp: number } | { ok: false; why: string };

/**
 * Whether a request was signed by Slack with this secret, within 5 minutes of
 * `now`. The comparison takes the same time whatever the signature holds.
 */
export function verifySlackSignature(request: {
  signingSecret: string;
  timestamp: string | undefined;
  signature: string | undefined;
  body: Buffer;
  now: Date;
}): SignatureCheck {
  const { timestamp, signature } = request;
  if (timestamp === undefined || signature === undefined) return { ok: false, why: 'the request is not signed (no X-Slack-Request-Timestamp or X-Slack-Signature)' };
  if (!TIMESTAMP.test(timestamp)) return { ok: false, why: 'X-Slack-Request-Timestamp is not a Unix time in seconds' };
  const sentAt = Number(timestamp);
  if (Math.abs(request.now.getTime() / 1000 - sentAt) > MAX_SIGNATURE_AGE_SECONDS) {
    return { ok: false, why: 'X-Slack-Request-Timestamp is more than 5 minutes from now' };
  }
  if (!SIGNATURE.test(signature)) return { ok: false, why: 'X-Slack-Signature is not v0= and 64 hex digits' };
  const expected = Buffer.from(slackSignature(request.signingSecret, timestamp, request.body), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, why: 'X-Slack-Signature does not match the body' };
  return { ok: true, signature, timestamp: sentAt };
}
