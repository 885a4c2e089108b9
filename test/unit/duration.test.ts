import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../lib/domain/duration';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Some of weeks, days, hours, minutes and (whole or tenths of) seconds, written out in ISO 8601. */
const fixedDuration = fc
  .record(
    {
      weeks: fc.nat({ max: 520 }),
      days: fc.nat({ max: 3650 }),
      hours: fc.nat({ max: 1000 }),
      minutes: fc.nat({ max: 10_000 }),
      tenthsOfSeconds: fc.nat({ max: 1_000_000 }),
    },
    { requiredKeys: [] },
  )
  .filter((parts) => Object.keys(parts).length > 0);

function iso(parts: { weeks?: number; days?: number; hours?: number; minutes?: number; tenthsOfSeconds?: number }): string {
  const date = `${parts.weeks === undefined ? '' : `${parts.weeks}W`}${parts.days === undefined ? '' : `${parts.days}D`}`;
  const seconds = parts.tenthsOfSeconds === undefined ? '' : `${parts.tenthsOfSeconds % 10 ? (parts.tenthsOfSeconds / 10).toFixed(1) : parts.tenthsOfSeconds / 10}S`;
  const time = `${parts.hours === undefined ? '' : `${parts.hours}H`}${parts.minutes === undefined ? '' : `${parts.minutes}M`}${seconds}`;
  return `P${date}${time ? `T${time}` : ''}`;
}

describe('parseDuration', () => {
  it('reads back exactly the length of any duration written in weeks, days, hours, minutes and seconds', () => {
    fc.assert(
      fc.property(fixedDuration, (parts) => {
        const ms =
          (parts.weeks ?? 0) * WEEK +
          (parts.days ?? 0) * DAY +
          (parts.hours ?? 0) * HOUR +
          (parts.minutes ?? 0) * MINUTE +
          ((parts.tenthsOfSeconds ?? 0) * SECOND) / 10;

        const parsed = parseDuration(iso(parts));

        if (ms > 0) expect(parsed).toEqual({ ms });
        else expect(parsed).toEqual({ problem: 'must be longer than zero' });
      }),
      // PT16.1S: 16.1 * 1000 is not a whole number in floating point.
      { numRuns: 2000, examples: [[{ tenthsOfSeconds: 161 }], [{ days: 1, tenthsOfSeconds: 323 }]] },
    );
  });

  it('refuses years and months, wherever they appear, saying why', () => {
    fc.assert(
      fc.property(fc.nat({ max: 100 }), fc.constantFrom('Y', 'M'), fixedDuration, (count, unit, rest) => {
        const text = `P${count}${unit}${iso(rest).slice(1)}`;

        expect(parseDuration(text)).toEqual({ problem: expect.stringContaining('years and months are not supported') });
      }),
    );
  });

  it('never throws, and answers either a positive length or a problem, whatever the text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^P[0-9WDTHMSY.]{0,12}$/)), (text) => {
        const parsed = parseDuration(text);

        if ('ms' in parsed) {
          expect(parsed.ms).toBeGreaterThan(0);
          expect(Number.isFinite(parsed.ms)).toBe(true);
          expect(text).toMatch(/^P/);
        } else {
          expect(parsed.problem).toMatch(/\w/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
