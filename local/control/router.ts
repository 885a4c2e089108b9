import type { IncomingMessage } from 'node:http';
import { ConflictError, ForbiddenError, NotFoundError, UnsupportedMediaTypeError, ValidationError } from '../../lib/errors';
import { InvalidJsonError, readBody } from '../http-io';
import { describeError, logLocal } from '../log';
import { SnsApiError } from '../aws/sns-outbound';

/** The /local control routes' small router: JSON in and out, errors mapped to statuses in one place. */

export interface JsonReply {
  status: number;
  body: unknown;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: RegExp;
  handle: (pathParams: string[], body: string) => JsonReply | Promise<JsonReply>;
}

/**
 * The route that matches a request, answered; NotFoundError when none does.
 * A body must say it is JSON: what a page on another origin can send without
 * asking first (a form, text/plain) is refused before anything happens.
 */
export async function route(routes: Route[], method: string, path: string, request: IncomingMessage): Promise<JsonReply> {
  for (const candidate of routes) {
    const match = candidate.path.exec(path);
    if (match && candidate.method === method) {
      const pathParams = match.slice(1).map(decodePathSegment);
      const body = await readBody(request);
      if (body.trim() !== '') requireJsonContentType(request.headers['content-type']);
      return candidate.handle(pathParams, body);
    }
  }
  throw new NotFoundError(`no route for ${method} ${path}`);
}

function requireJsonContentType(contentType: string | undefined): void {
  if (contentType && /^application\/json\s*(;|$)/i.test(contentType)) return;
  throw new UnsupportedMediaTypeError(
    `the /local routes take a JSON body sent as content-type: application/json (curl: -H 'content-type: application/json'), not ${contentType || 'no content type'}`,
  );
}

/**
 * Refuses a request a browser sent from a page of another origin (its Origin
 * header): only the stack's own pages, on 127.0.0.1 or localhost at this port,
 * may call it from a browser. curl, the SDKs and tests send no Origin.
 */
export function requireSameOrigin(request: IncomingMessage): void {
  const origin = request.headers.origin;
  if (origin === undefined) return;
  const port = request.socket.localPort;
  const own = [`http://127.0.0.1:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`];
  if (!own.includes(origin)) {
    throw new ForbiddenError(`a request from a page on ${origin} is refused: the local stack takes requests from its own origin (${own[0]}) and from clients that send no Origin`);
  }
}

/** The one place that maps errors to HTTP statuses; a 5xx says nothing about internals. */
export function errorReply(error: unknown): { status: number; code: string; message: string } {
  if (error instanceof InvalidJsonError) return { status: 400, code: 'InvalidJson', message: error.message };
  if (error instanceof ValidationError) return { status: 400, code: 'InvalidRequest', message: error.message };
  if (error instanceof ForbiddenError) return { status: 403, code: 'Forbidden', message: error.message };
  if (error instanceof NotFoundError) return { status: 404, code: 'NotFound', message: error.message };
  if (error instanceof ConflictError) return { status: 409, code: 'Conflict', message: error.message };
  if (error instanceof UnsupportedMediaTypeError) return { status: 415, code: 'UnsupportedMediaType', message: error.message };
  // What the simulated SNS refuses, as SNS words it (a message over 256 KiB).
  if (error instanceof SnsApiError) return { status: error.status, code: error.code, message: error.message };
  logLocal('error', 'control request failed', describeError(error));
  return { status: 500, code: 'InternalError', message: 'the local stack failed to handle the request; see its stderr' };
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError(`path segment '${segment}' is not valid percent-encoding`);
  }
}

/** Invokes a local function and answers with what it returned, or 500 saying how it failed. */
export async function invoke(code: string, what: string, run: () => Promise<unknown>): Promise<JsonReply> {
  try {
    return ok(await run());
  } catch (error) {
    const { errorType, errorMessage } = describeError(error);
    return { status: 500, body: { error: { code, message: `${what} failed (${errorType}): ${errorMessage}` } } };
  }
}

/** 200 with a body. */
export function ok(body: unknown): JsonReply {
  return { status: 200, body };
}

/** 201 with a body. */
export function created(body: unknown): JsonReply {
  return { status: 201, body };
}
