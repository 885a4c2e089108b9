import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FIGURES_BEGIN, FIGURES_END, figuresMarkdown, type Results } from '../../bench/figures';

// bench/README.md's figures are generated from bench/results.json by `npm run bench`; a hand edit of
// either, or a results file committed without the README it produced, makes them disagree.

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('bench/README.md', () => {
  it('carries exactly the figures that bench/results.json holds', () => {
    const readme = read('bench/README.md');
    const results = JSON.parse(read('bench/results.json')) as Results;
    const block = readme.slice(readme.indexOf(FIGURES_BEGIN) + FIGURES_BEGIN.length, readme.indexOf(FIGURES_END)).trim();

    expect(readme.indexOf(FIGURES_BEGIN)).toBeGreaterThan(0);
    expect(results.smoke).toBe(false);
    expect(block).toBe(figuresMarkdown(results));
  });
});
