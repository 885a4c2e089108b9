import { describe, expect, it } from 'vitest';
import type { ConnectionRecord } from '../../lib/domain/connection';
import { parseDuration } from '../../lib/domain/duration';
import { pendingTimeoutStep, revocationFor, revocationLimits, withinRevocationLimits } from '../../lib/domain/enforcement';
import { parsePolicy } from '../../lib/domain/policy';

const now = new Date('2026-11-23T12:00:00Z');
const ACME = '111122223333';
const PARTNER = '210987654321';

const policy = parsePolicy({
  allow: [
    { account: ACME, label: 'acme-prod' },
    { account: PARTNER, label: 'partner', expiresAt: '2026-11-01T00:00:00Z' },
  ],
  deny: [{ account: '444455556666', label: 'offboarded' }],
  regions: ['eu-west-1'],
  maxEndpointsPerAccount: 1,
  enforce: true,
});

const admittedBy = (decidedBy: string): Pick<ConnectionRecord, 'decision'> => ({
  decision: { outcome: 'accept', acted: true, rule: 'allow:x', reason: 'x', decidedBy, decidedAt: '2026-01-01T00:00:00Z' },
});

describe('ISO 8601 durations', () => {
  it.each([
    ['P7D', 7 * 86_400_000],
    ['PT2S', 2000],
    ['PT0.5S', 500],
    ['P1W', 7 * 86_400_000],
    ['P1DT12H30M', 86_400_000 + 12 * 3_600_000 + 30 * 60_000],
  ])('reads %s', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ms });
  });

  it.each([
    ['P1M', /years and months/],
    ['P1Y', /years and months/],
    ['7d', /ISO 8601 duration/],
    ['P', /ISO 8601 duration/],
    ['PT', /ISO 8601 duration/],
    ['P1DT', /ISO 8601 duration/],
    ['PT0S', /longer than zero/],
  ])('refuses %s, saying why', (text, why) => {
    const parsed = parseDuration(text);
    expect('problem' in parsed && parsed.problem).toMatch(why);
  });
});

describe('the policy fields for enforcement and timeouts', () => {
  it('names the field that is wrong', () => {
    expect(() => parsePolicy({ pendingTimeout: '1 week' })).toThrow('invalid policy: pendingTimeout: must be an ISO 8601 duration such as P7D, PT12H or PT2S');
    expect(() => parsePolicy({ onPendingTimeout: 'reject' })).toThrow('onPendingTimeout: needs pendingTimeout');
    expect(() => parsePolicy({ pendingTimeout: 'P1D', onPendingTimeout: 'ignore' })).toThrow('onPendingTimeout: must be reject or remind');
    expect(() => parsePolicy({ maxRevocationPercent: 101 })).toThrow('maxRevocationPercent: must be at most 100');
    expect(() => parsePolicy({ maxRevocationsPerRun: 1.5 })).toThrow('maxRevocationsPerRun: must be a whole number');
    expect(() => parsePolicy({ enforce: 'yes' })).toThrow('enforce: must be true or false');
  });

  it('writes no defaults into the document, and fills them in when asked', () => {
    const parsed = parsePolicy({ enforce: true });
    expect(parsed).not.toHaveProperty('maxRevocationsPerRun');
    expect(revocationLimits(parsed)).toEqual({ maxRevocationsPerRun: 10, maxRevocationPercent: 10 });
  });
});

describe('revocationFor', () => {
  it('revokes a denied account whoever admitted it', () => {
    expect(revocationFor(policy, admittedBy('arn:aws:iam::000000000000:user/approver'), '444455556666', now)).toEqual({
      outcome: 'reject',
      rule: 'enforce:deny:offboarded',
      reason: "account 444455556666 matched deny entry 'offboarded', so its connection is revoked",
      decidedBy: 'policy',
      byOrganization: false,
    });
  });

  it('revokes what the policy admitted once the allow entry expired or is gone', () => {
    expect(revocationFor(policy, admittedBy('policy'), PARTNER, now)?.rule).toBe('enforce:expired:partner');
    expect(revocationFor(policy, admittedBy('policy'), '999988887777', now)?.rule).toBe('enforce:no-longer-allowed');
  });

  it('leaves what an approver accepted by hand, and what is still allowed', () => {
    expect(revocationFor(policy, admittedBy('arn:aws:iam::000000000000:user/approver'), '999988887777', now)).toBeUndefined();
    expect(revocationFor(policy, undefined, '999988887777', now)).toBeUndefined();
    expect(revocationFor(policy, admittedBy('policy'), ACME, now)).toBeUndefined();
  });

  it('never revokes for regions or endpoint limits: those only govern new requests', () => {
    // ACME connects from us-east-1 (not in regions) and has more than maxEndpointsPerAccount: still allowed.
    expect(revocationFor(policy, admittedBy('policy'), ACME, now)).toBeUndefined();
  });
});

describe('withinRevocationLimits', () => {
  const limits = { maxRevocationsPerRun: 10, maxRevocationPercent: 10 };

  it('allows revocations within both limits', () => {
    expect(withinRevocationLimits(10, 100, limits)).toBe(true);
    expect(withinRevocationLimits(0, 0, limits)).toBe(true);
  });

  it('refuses more than either limit', () => {
    expect(withinRevocationLimits(11, 1000, limits)).toBe(false); // count
    expect(withinRevocationLimits(2, 10, limits)).toBe(false); // 20%
    expect(withinRevocationLimits(1, 0, limits)).toBe(false);
  });
});

describe('pendingTimeoutStep', () => {
  const timed = (onPendingTimeout: 'reject' | 'remind', mode: 'auto' | 'manual' = 'auto') =>
    parsePolicy({ mode, pendingTimeout: 'P7D', onPendingTimeout });
  const pending = (createdAt: string, remindedAt?: string) => ({ state: 'pendingAcceptance' as const, createdAt, remindedAt });

  it('does nothing before the timeout, or without one', () => {
    expect(pendingTimeoutStep(timed('reject'), pending('2026-11-17T12:00:00Z'), now)).toBeUndefined();
    expect(pendingTimeoutStep(parsePolicy({}), pending('2020-01-01T00:00:00Z'), now)).toBeUndefined();
  });

  it('rejects after the timeout, saying since when', () => {
    const step = pendingTimeoutStep(timed('reject'), pending('2026-11-16T12:00:00Z'), now);
    expect(step).toMatchObject({ kind: 'reject', intent: { outcome: 'reject', rule: 'pendingTimeout:reject', decidedBy: 'policy' } });
    expect(step?.kind === 'reject' && step.intent.reason).toContain('pending since 2026-11-16T12:00:00Z');
  });

  it('reminds instead of rejecting when the policy does not act (manual)', () => {
    expect(pendingTimeoutStep(timed('reject', 'manual'), pending('2026-11-01T00:00:00Z'), now)).toEqual({ kind: 'remind' });
  });

  it('reminds once per timeout period, not on every run', () => {
    const policy = timed('remind');
    expect(pendingTimeoutStep(policy, pending('2026-11-01T00:00:00Z'), now)).toEqual({ kind: 'remind' });
    expect(pendingTimeoutStep(policy, pending('2026-11-01T00:00:00Z', '2026-11-20T12:00:00Z'), now)).toBeUndefined();
    expect(pendingTimeoutStep(policy, pending('2026-11-01T00:00:00Z', '2026-11-16T12:00:00Z'), now)).toEqual({ kind: 'remind' });
  });
});
