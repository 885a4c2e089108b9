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
