/**
 * ISO 8601 durations of fixed length: weeks, days, hours, minutes and seconds
 * (`P7D`, `PT12H`, `P1DT30M`, `PT2S`, `PT0.5S`). Years and months are refused:
 * their length depends on the calendar, and a timeout should mean one thing.
 */
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
const CALENDAR_UNITS = /^P(?:\d+Y)|^P(?:\d+Y)?\d+M/;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/**
 * Milliseconds in a duration, or a sentence saying what is wrong with it, for
 * the policy validator to attach to the field.
 */
export function parseDuration(text: string): { ms: number } | { problem: string } {
  if (CALENDAR_UNITS.test(text)) {
    return { problem: 'years and months are not supported because their length varies; use weeks or days, such as P30D' };
  }
  const match = DURATION.exec(text);
  // "P" and "PT" alone match the pattern with every part absent.
  if (!match || text === 'P' || text.endsWith('T')) {
    return { problem: 'must be an ISO 8601 duration such as P7D, PT12H or PT2S' };
  }
  const [, weeks, days, hours, minutes, seconds] = match;
  const ms =
    Number(weeks ?? 0) * WEEK +
    Number(days ?? 0) * DAY +
    Number(hours ?? 0) * HOUR +
    Number(minutes ?? 0) * MINUTE +
    // Whole milliseconds: 16.1 * 1000 is 16100.000000000002 in floating point.
    Math.round(Number(seconds ?? 0) * SECOND);
  if (ms <= 0) return { problem: 'must be longer than zero' };
  return { ms };
}

/** Milliseconds in a duration the policy validator has accepted; throws on anything else. */
export function durationMs(text: string): number {
  const parsed = parseDuration(text);
  if ('problem' in parsed) throw new Error(`not a valid duration '${text}': ${parsed.problem}`);
  return parsed.ms;
}
