import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { slackSignature, verifySlackSignature } from '../../lib/slack/signature';
import { authenticateSlackRequest } from '../../lib/slack/requests';
import { UnauthorizedError } from '../../lib/errors';

const SECRET = 'local-slack-signing-secret';
const NOW = new Date('2026-05-01T12:00:00Z');
const nowSeconds = String(Math.floor(NOW.getTime() / 1000));

// Slack's documented example: signing secret, timestamp and body, and the signature they give.
const SLACK_EXAMPLE = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: '1531420618',
  body: 'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

describe("Slack's v0 request signature", () => {
  it("computes the signature of Slack's documented example", () => {
    expect(slackSignature(SLACK_EXAMPLE.secret, SLACK_EXAMPLE.timestamp, SLACK_EXAMPLE.body)).toBe(SLACK_EXAMPLE.signature);
  });

  it('accepts any body signed with the secret within 5 minutes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.integer({ min: -300, max: 300 }), (bytes, skew) => {
        const body = Buffer.from(bytes);
        const timestamp = String(Number(nowSeconds) + skew);
        const check = verifySlackSignature({ signingSecret: SECRET, timestamp, signature: slackSignature(SECRET, timestamp, body), body, now: NOW });
        expect(check.ok).toBe(true);
      }),
    );
  });

  it('refuses any body signed with any other secret', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.string({ minLength: 1 }), (bytes, wrongSecret) => {
        fc.pre(wrongSecret !== SECRET);
        const body = Buffer.from(bytes);
        const check = verifySlackSignature({ signingSecret: SECRET, timestamp: nowSeconds, signature: slackSignature(wrongSecret, nowSeconds, body), body, now: NOW });
        expect(check).toEqual({ ok: false, why: 'X-Slack-Signature does not match the body' });
      }),
    );
  });

  it('refuses a signed body changed in any way, and a signature moved to another timestamp', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 1024 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, at, flip) => {
        const body = Buffer.from(bytes);
        const signature = slackSignature(SECRET, nowSeconds, body);
        const changed = Buffer.from(body);
        const index = at % changed.length;
        changed[index] = (changed[index] ?? 0) ^ flip;
        expect(verifySlackSignature({ signingSecret: SECRET, timestamp: nowSeconds, signature, body: changed, now: NOW }).ok).toBe(false);
        expect(verifySlackSignature({ signingSecret: SECRET, timestamp: String(Number(nowSeconds) - 1), signature, body, now: NOW }).ok).toBe(false);
      }),
    );
  });

  it('refuses a timestamp more than 5 minutes away, even correctly signed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.integer({ min: 301, max: 10 ** 7 }), fc.boolean(), (bytes, away, past) => {
        const body = Buffer.from(bytes);
        const timestamp = String(Number(nowSeconds) + (past ? -away : away));
        const check = verifySlackSignature({ signingSecret: SECRET, timestamp, signature: slackSignature(SECRET, timestamp, body), body, now: NOW });
        expect(check).toEqual({ ok: false, why: 'X-Slack-Request-Timestamp is more than 5 minutes from now' });
      }),
    );
  });

  it('refuses whatever headers are sent that are not a signature, without throwing', () => {
    fc.assert(
      fc.property(fc.option(fc.string()), fc.option(fc.string()), fc.uint8Array({ maxLength: 64 }), (timestamp, signature, bytes) => {
        const check = verifySlackSignature({ signingSecret: SECRET, timestamp: timestamp ?? undefined, signature: signature ?? undefined, body: Buffer.from(bytes), now: NOW });
        expect(check.ok).toBe(false);
      }),
    );
  });

  it('accepts a signature once: the same request again is a replay, refused', async () => {
    const seen = new Set<string>();
    const remember = async (signature: string) => !seen.has(signature) && Boolean(seen.add(signature));
    const body = Buffer.from('payload=%7B%7D');
    const headers = { 'x-slack-request-timestamp': nowSeconds, 'x-slack-signature': slackSignature(SECRET, nowSeconds, body) };

    await authenticateSlackRequest({ headers, body }, { signingSecret: SECRET, remember, now: NOW });
    const replay = authenticateSlackRequest({ headers, body }, { signingSecret: SECRET, remember, now: NOW });

    await expect(replay).rejects.toThrow(UnauthorizedError);
    await expect(replay).rejects.toThrow(/replayed/);
  });
});
