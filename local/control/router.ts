import type { IncomingMessage } from 'node:http';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../lib/errors';
import { InvalidJsonError, readBody } from '../http-io';
import { describeError, logLocal } from '../log';

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

/** The route that matches a request, answered; NotFoundError when none does. */
export async function route(routes: Route[], method: string, path: string, request: IncomingMessage): Promise<JsonReply> {
  for (const candidate of routes) {
    const match = candidate.path.exec(path);
    if (match && candidate.method === method) {
      const pathParams = match.slice(1).map(decodePathSegment);
      return candidate.handle(pathParams, await readBody(request));
    }
  }
  throw new NotFoundError(`no route for ${method} ${path}`);
}

/** The one place that maps errors to HTTP statuses; a 5xx says nothing about internals. */
export function errorReply(error: unknown): { status: number; code: string; message: string } {
  if (error instanceof InvalidJsonError) return { status: 400, code: 'InvalidJson', message: error.message };
  if (error instanceof ValidationError) return { status: 400, code: 'InvalidRequest', message: error.message };
  if (error instanceof ForbiddenError) return { status: 403, code: 'Forbidden', message: error.message };
  if (error instanceof NotFoundError) return { status: 404, code: 'NotFound', message: error.message };
  if (error instanceof ConflictError) return { status: 409, code: 'Conflict', message: error.message };
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
