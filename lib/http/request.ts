import * as v from '../validation';
import { describeIssues } from '../domain/policy';
import { isSafeText, UNSAFE_TEXT_MESSAGE } from '../domain/text';
import { PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError } from '../errors';

/** The largest request body the API reads. */
export const MAX_BODY_BYTES = 16 * 1024;

/** The parts of an API Gateway HTTP API (payload format 2.0) event the API reads. */
export const httpApiEventSchema = v.object({
  version: v.literal('2.0'),
  routeKey: v.string(),
  rawPath: v.string(),
  headers: v.optional(v.record(v.string(), v.string()), {}),
  queryStringParameters: v.optional(v.record(v.string(), v.string())),
  pathParameters: v.optional(v.record(v.string(), v.string())),
  body: v.optional(v.string()),
  isBase64Encoded: v.optional(v.boolean(), false),
  requestContext: v.object({
    requestId: v.string(),
    http: v.object({ method: v.string() }),
    authorizer: v.optional(
      v.object({
        iam: v.optional(v.object({ userArn: v.optional(v.string()), accessKey: v.optional(v.string()) })),
        jwt: v.optional(v.object({ claims: v.record(v.string(), v.unknown()) })),
      }),
    ),
  }),
});

export type HttpApiEvent = v.InferOutput<typeof httpApiEventSchema>;

/** Path parameters, validated (AWS id formats). */
export function pathParams<T extends v.Schema>(event: HttpApiEvent, schema: T): v.InferOutput<T> {
  return validate(schema, event.pathParameters ?? {}, 'path');
}

/** Query string parameters, validated; unknown parameters are refused. */
export function queryParams<T extends v.Schema>(event: HttpApiEvent, schema: T): v.InferOutput<T> {
  return validate(schema, event.queryStringParameters ?? {}, 'query');
}

/**
 * The JSON body, parsed but not yet validated. Refuses a body that is not
 * application/json (415), larger than 16 KiB (413) or not JSON (400); no body is `{}`.
 */
export function jsonBody(event: HttpApiEvent): unknown {
  if (event.body === undefined || event.body === '') return {};
  const bytes = Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  const mediaType = header(event, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new UnsupportedMediaTypeError(`the body must be application/json, not ${mediaType ? `'${mediaType}'` : 'without a content type'}`);
  }
  if (bytes.byteLength > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(`the body is ${bytes.byteLength} bytes; the most accepted is ${MAX_BODY_BYTES}`);
  }
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new ValidationError(`the body is not JSON: ${error instanceof Error ? error.message : String(error)}`, undefined, { cause: error });
  }
}

/** A reason an approver gives: 1 to 1000 characters after trimming, none of them unsafe (lib/domain/text.ts). */
export const reasonSchema = v.pipe(
  v.string(),
  v.trim(),
  v.minLength(1, 'must say why'),
  v.maxLength(1000, 'must be at most 1000 characters'),
  v.check(isSafeText, UNSAFE_TEXT_MESSAGE),
);

/**
 * `build`'s schema, built on first use and kept: a route's validation is work only the
 * invocations that call the route need, not every cold start.
 */
export function onFirstUse<T>(build: () => T): () => T {
  let built: T | undefined;
  return () => (built ??= build());
}

/** The JSON body, validated against `schema` (strict: unknown fields are refused). */
export function body<T extends v.Schema>(event: HttpApiEvent, schema: T): v.InferOutput<T> {
  return validate(schema, jsonBody(event), 'body');
}

/** A request header (HTTP API lower-cases their names). */
export function header(event: HttpApiEvent, name: string): string | undefined {
  return event.headers[name.toLowerCase()];
}

function validate<T extends v.Schema>(schema: T, input: unknown, where: 'path' | 'query' | 'body'): v.InferOutput<T> {
  const parsed = v.safeParse(schema, input);
  if (!parsed.success) throw new ValidationError(`invalid ${where}: ${describeIssues(parsed.issues, schema)}`, v.problems(parsed.issues));
  return parsed.output;
}

/** What If-Match named: any current version (`*`), or a list of entity tags, compared strongly. */
export type IfMatch = { any: true } | { any: false; tags: string[]; raw: string };

/**
 * If-Match as RFC 9110 §13.1.1 reads it: `*`, or a list of entity tags. A value
 * that is not well formed (`stale-version-0`, an unquoted `3`) is kept as a list
 * that matches nothing, so that it gets 412 like any other mismatch, never 400.
 * Weak tags (`W/"3"`) never match: If-Match compares strongly.
 */
export function ifMatch(event: HttpApiEvent): IfMatch | undefined {
  const raw = header(event, 'if-match');
  if (raw === undefined) return undefined;
  if (raw.trim() === '*') return { any: true };
  const tags: string[] = [];
  const entityTag = /\s*(W\/)?"([\x21\x23-\x7e\x80-\uffff]*)"\s*(?:,|$)/y;
  for (let match = entityTag.exec(raw); match; match = entityTag.exec(raw)) {
    if (!match[1]) tags.push(match[2] ?? '');
    if (entityTag.lastIndex >= raw.length) return { any: false, tags, raw };
  }
  return { any: false, tags: [], raw };
}
