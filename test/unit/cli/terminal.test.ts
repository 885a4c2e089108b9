import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { table } from '../../../cli/table';
import { safeLine, safeText } from '../../../cli/terminal';

// Whatever reaches the CLI's output (labels, reasons, OU names, principals), none of
// it may drive the terminal: no control character and no bidi control passes raw.

const DRIVES_THE_TERMINAL = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]|\p{Cs}/u;
const DRIVES_THE_TERMINAL_BUT_NEWLINE = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]|\p{Cs}/u;
const anyText = fc.string({ unit: 'binary' });

describe('terminal-safe text', () => {
  // fast-check builds its full-Unicode string tables once per file: seconds on a busy machine.
  it('lets no control or bidi character through in a cell, newline and tab included, whatever the text', () => {
    fc.assert(fc.property(anyText, (text) => !DRIVES_THE_TERMINAL.test(safeLine(text))));
  }, 30_000);

  it('keeps newlines in text, and nothing else that drives the terminal', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const safe = safeText(text);
        return !DRIVES_THE_TERMINAL_BUT_NEWLINE.test(safe) && safe.split('\n').length === text.split('\n').length;
      }),
    );
  });

  it('leaves ordinary text, accents and other scripts as they are', () => {
    for (const text of ['acme-prod', 'Root › Workloads › Prod', 'équipe réseau', 'مرحبا', '東京 team', 'emoji 🚀']) expect(safeLine(text)).toBe(text);
  });

  it('shows what was there as a \\u escape, which JSON reads back as the same text', () => {
    const hostile = 'x\u001b[2K\u001b]0;title\u0007\u202Ey\u009b\uD800';

    expect(safeLine(hostile)).toBe('x\\u001B[2K\\u001B]0;title\\u0007\\u202Ey\\u009B\\uD800');
    expect(JSON.parse(safeText(JSON.stringify({ hostile })))).toEqual({ hostile });
  });

  it('keeps a table one line per row with its columns aligned, whatever a cell holds', () => {
    const rendered = table([
      { ID: 'a', WHY: 'two\nlines\tand\u001b[1A an escape' },
      { ID: 'bb', WHY: 'plain' },
    ]);

    expect(rendered.split('\n')).toEqual(['ID  WHY', 'a   two\\u000Alines\\u0009and\\u001B[1A an escape', 'bb  plain']);
  });
});
