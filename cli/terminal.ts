import { escapedForDisplay } from '../lib/domain/text';

/**
 * What the CLI prints comes from many hands: labels and reasons people wrote,
 * OU names from Organizations, principals from an identity provider. None of it
 * may drive the operator's terminal: a control character (ESC[1A ESC[2K erases a
 * line above; OSC 0 retitles the window) or a bidirectional-text control (U+202E
 * shows text reversed) is printed as its \uXXXX escape instead, whatever its
 * source (lib/domain/text.ts says which). The escape is also valid inside a JSON
 * string, so --json output stays JSON.
 */

/** One line of text (a table cell): every control, newline and tab included, escaped. */
export function safeLine(text: string): string {
  return escapedForDisplay(text);
}

/** Text for the terminal: every control but the newline escaped. */
export function safeText(text: string): string {
  return escapedForDisplay(text, '\n');
}

/** Writes text for a person: every control and bidi character escaped, whoever wrote it. */
export function say(stream: NodeJS.WritableStream, text: string): void {
  stream.write(`${safeText(text)}\n`);
}
