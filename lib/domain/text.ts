/**
 * The rules for free text a human writes and the product stores and shows to
 * others (an approver's reason, a policy entry's label), defined once: the API's
 * request schemas and the policy schema both use them.
 *
 * Refused, not cleaned: control characters other than tab and newline (terminal
 * escapes such as ESC[2K erase other operators' screens), bidirectional-text
 * controls (which make text read differently from what it is) and lone
 * surrogates (which are not Unicode, and break JSON tools such as jq).
 */
const UNSAFE_TEXT = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]|\p{Cs}/u;

/** What a validation error says about unsafe text. */
export const UNSAFE_TEXT_MESSAGE = 'must not contain control characters (other than tab and newline), bidirectional-text controls or lone surrogates';

/** Whether free text is free of what UNSAFE_TEXT refuses. */
export function isSafeText(text: string): boolean {
  return !UNSAFE_TEXT.test(text);
}

/** A one-line name (a label): safe text without tab or newline either. */
export function isSafeLine(text: string): boolean {
  return isSafeText(text) && !/[\t\n]/.test(text);
}

/** What a validation error says about a one-line name that is not safe. */
export const UNSAFE_LINE_MESSAGE = 'must be one line without control characters, bidirectional-text controls or lone surrogates';

/**
 * Characters that change how the text around them is shown, wherever it came
 * from (a label written before these rules, an OU name from Organizations, a
 * principal from an identity provider): every control character (C0, DEL, C1),
 * the bidirectional-text controls, the line and paragraph separators, and lone
 * surrogates. Shown as their \uXXXX escape instead, by the CLI and the console.
 */
const SHOWN_ESCAPED = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]|\p{Cs}/gu;

/** The \uXXXX escape of one character (valid in a JSON string too). */
export function escapeOf(character: string): string {
  return `\\u${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Text split into what shows as it is and what must be shown escaped (see
 * SHOWN_ESCAPED), keeping the characters in `keep` (say, newline) as they are.
 */
export function displayParts(text: string, keep = ''): { text: string; escaped: boolean }[] {
  const parts: { text: string; escaped: boolean }[] = [];
  let last = 0;
  for (const match of text.matchAll(SHOWN_ESCAPED)) {
    const character = match[0];
    if (keep.includes(character)) continue;
    if (match.index > last) parts.push({ text: text.slice(last, match.index), escaped: false });
    parts.push({ text: escapeOf(character), escaped: true });
    last = match.index + character.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last), escaped: false });
  return parts;
}

/** Text with every character of SHOWN_ESCAPED but those in `keep` written as its \uXXXX escape. */
export function escapedForDisplay(text: string, keep = ''): string {
  return text.replace(SHOWN_ESCAPED, (character) => (keep.includes(character) ? character : escapeOf(character)));
}
