/** A median with its spread: the 25th and 75th percentiles, and how many samples. */
export interface Summary {
  median: number;
  p25: number;
  p75: number;
  p99: number;
  n: number;
}

/** Summarizes samples (it sorts a copy). */
export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
  return { median: at(0.5), p25: at(0.25), p75: at(0.75), p99: at(0.99), n: sorted.length };
}

/** "1.84 (1.71–1.95)": a median and its interquartile range. */
export function formatSummary(summary: Summary, digits = 2): string {
  return `${summary.median.toFixed(digits)} (${summary.p25.toFixed(digits)}–${summary.p75.toFixed(digits)})`;
}
