import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BENCH_FIGURES, README_PERFORMANCE, blockOf, figuresMarkdown, performanceMarkdown, type Results } from '../../bench/figures';

// The figures in bench/README.md and README.md are generated from bench/results.json by `npm run bench`;
// a hand edit of any of them, or a results file committed without the READMEs it produced, makes them disagree.

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const results = JSON.parse(read('bench/results.json')) as Results;

describe('the performance figures', () => {
  it('come from a full run, not a smoke run', () => {
    expect(results.smoke).toBe(false);
  });

  it('in bench/README.md are exactly those bench/results.json holds', () => {
    expect(blockOf(read('bench/README.md'), BENCH_FIGURES)).toBe(figuresMarkdown(results));
  });

  it("in README.md's Performance section are exactly those bench/results.json holds", () => {
    expect(blockOf(read('README.md'), README_PERFORMANCE)).toBe(performanceMarkdown(results));
  });
});
