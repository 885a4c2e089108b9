import { describe, expect, it } from 'vitest';
import { chromiumPath } from './browser';

// The console's tests never skip for want of a browser: they fail, and say how to get one.

describe('finding Chromium for the console tests', () => {
  it('fails, saying how to install one, when there is none', () => {
    expect(() => chromiumPath({ env: {}, candidates: ['/nonexistent/chromium'] })).toThrow(/apt-get install -y chromium.*CHROMIUM_PATH/s);
  });

  it('fails naming CHROMIUM_PATH when it points at nothing', () => {
    expect(() => chromiumPath({ env: { CHROMIUM_PATH: '/nonexistent/chrome' } })).toThrow('CHROMIUM_PATH is /nonexistent/chrome, which does not exist');
  });

  it('finds the one this machine has', () => {
    expect(chromiumPath()).toMatch(/chrom/);
  });
});
