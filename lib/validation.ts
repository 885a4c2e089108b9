// The one validation library product code imports: valibot, whose schemas are plain objects made by
// small functions. A cold start builds every schema its modules declare; with zod/mini that cost
// about 10 ms of CPU per function here (its schema classes and their shared core), with valibot
// about 2 (bench/README.md, "Cold start"). This module gives valibot's issues the messages this
// project has always shown, and the few things every schema here needs: a strict object that names
// every unknown field, and one sentence for a list of issues.
import * as v from 'valibot';

export * from 'valibot';

/** What an input is, as a message says it: `undefined`, `NaN`, `number`, `array`, … */
function kindOf(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  if (typeof input === 'number' && Number.isNaN(input)) return 'NaN';
  return typeof input;
}

/** The expectation of a type issue without valibot's quotes (`"string"` → string). */
const unquoted = (expected: string | null) => (expected ?? 'something else').replace(/"/g, '');

/**
 * The messages of issues whose schema gives none: the wording users of the API and the CLI have
 * read since the first release (and tests pin), for the kinds of issue this project's schemas raise.
 */
v.setGlobalMessage((issue) => {
  switch (issue.type) {
    case 'min_length':
      return `Too small: expected ${kindOf(issue.input)} to have >=${String(issue.requirement)} ${Array.isArray(issue.input) ? 'items' : 'characters'}`;
    case 'max_length':
      return `Too big: expected ${kindOf(issue.input)} to have <=${String(issue.requirement)} ${Array.isArray(issue.input) ? 'items' : 'characters'}`;
    case 'min_value':
      return `Too small: expected number to be >=${String(issue.requirement)}`;
    case 'max_value':
      return `Too big: expected number to be <=${String(issue.requirement)}`;
    default:
      // An object's issue about one of its keys: a required field that is not there.
      if (issue.kind === 'schema' && issue.path?.at(-1)?.origin === 'key' && issue.input === undefined) return 'is required';
      return issue.kind === 'schema' ? `Invalid input: expected ${unquoted(issue.expected)}, received ${kindOf(issue.input)}` : `Invalid input: ${issue.message}`;
  }
});

export type Issue = v.BaseIssue<unknown>;
export type Schema = v.GenericSchema;

/** The issue `strictObject` raises: `input` holds the unknown field names. */
const UNKNOWN_FIELDS = 'known fields only';

/**
 * An object schema that refuses unknown fields, naming every one of them in a single issue (valibot's
 * own strictObject stops at the first), alongside whatever its fields' own issues are.
 */
export function strictObject<const TEntries extends v.ObjectEntries>(entries: TEntries, message?: string) {
  return v.pipe(
    v.looseObject(entries, message),
    v.rawCheck(({ dataset, addIssue }) => {
      const value = dataset.value as unknown;
      if (!value || typeof value !== 'object' || Array.isArray(value)) return;
      const unknown = Object.keys(value).filter((key) => !Object.hasOwn(entries, key));
      if (unknown.length) addIssue({ input: unknown, expected: UNKNOWN_FIELDS, message: `unknown fields ${unknown.join(', ')}` });
    }),
  ) as unknown as v.SchemaWithPipe<readonly [v.ObjectSchema<TEntries, undefined>]>;
}

/** An issue's path as a reader writes it: `allow[2].account`; empty at the top. */
export function pathOf(issue: Issue): string {
  return (issue.path ?? []).reduce<string>((text, item) => {
    const key = item.key as PropertyKey;
    return typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key);
  }, '');
}

/** The keys of an issue's path. */
export function keysOf(issue: Issue): PropertyKey[] {
  return (issue.path ?? []).map((item) => item.key as PropertyKey);
}

/** The unknown field names of a `strictObject` issue; undefined for any other issue. */
export function unknownFields(issue: Issue): string[] | undefined {
  return issue.expected === UNKNOWN_FIELDS && Array.isArray(issue.input) ? (issue.input as string[]) : undefined;
}

/**
 * The field names an object schema accepts at `path` inside `schema` (through arrays, optionals,
 * defaults, pipes and unions); empty when there is no object there.
 */
export function fieldsAt(schema: Schema, path: readonly PropertyKey[]): string[] {
  const found = new Set<string>();
  const visit = (node: unknown, rest: readonly PropertyKey[]): void => {
    const schemaNode = node as { type?: string; entries?: Record<string, unknown>; item?: unknown; wrapped?: unknown; options?: unknown[] } | undefined;
    if (!schemaNode?.type) return;
    if (schemaNode.entries) {
      if (!rest.length) Object.keys(schemaNode.entries).forEach((key) => found.add(key));
      else if (typeof rest[0] === 'string') visit(schemaNode.entries[rest[0]], rest.slice(1));
      return;
    }
    if (schemaNode.item !== undefined) {
      if (typeof rest[0] === 'number') visit(schemaNode.item, rest.slice(1));
      return;
    }
    if (schemaNode.wrapped !== undefined) return visit(schemaNode.wrapped, rest);
    if (schemaNode.options) schemaNode.options.forEach((option) => visit(option, rest));
  };
  visit(schema, path);
  return [...found];
}

/** Issues as a log line or an error's details hold them: where and what, without the input they came from. */
export function problems(issues: readonly Issue[]): { path: string; message: string }[] {
  return issues.map((issue) => ({ path: pathOf(issue), message: issue.message }));
}
