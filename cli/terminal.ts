/**
 * What the CLI prints comes from many hands: labels and reasons people wrote,
 * OU names from Organizations, principals from an identity provider. None of it
 * may drive the operator's terminal: a control character (ESC[1A ESC[2K erases a
 * line above; OSC 0 retitles the window) or a bidirectional-text control (U+202E
 * shows text reversed) is printed as its \uXXXX escape instead, whatever its
 * source. The escape is also valid inside a JSON string, so --json output stays JSON.
 */
const CONTROL = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]|\p{Cs}/gu;
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]|\p{Cs}/gu;

function escape(character: string): string {
  return `\\u${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** One line of text (a table cell): every control, newline and tab included, escaped. */
export function safeLine(text: string): string {
  return text.replace(CONTROL, escape);
}

/** Text for the terminal: every control but the newline escaped. */
export function safeText(text: string): string {
  return text.replace(CONTROL_BUT_NEWLINE, escape);
}

/** Writes text for a person: every control and bidi character escaped, whoever wrote it (cli/terminal.ts). */
export function say(stream: NodeJS.WritableStream, text: string): void {
  stream.write(`${safeText(text)}\n`);
}

