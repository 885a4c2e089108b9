import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { ValidationError } from '../lib/errors';

const MAX_BODY_BYTES = 1024 * 1024;

/** Said (nosniff) on every response the local stack writes itself: browsers take its content type as given. */
export const NOSNIFF_HEADER = 'x-content-type-options';

/** Reads a request body as UTF-8; refuses bodies over 1 MiB. */
export async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.byteLength;
    if (size > MAX_BODY_BYTES) throw new ValidationError('request body is larger than 1 MiB');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses a JSON body and validates it; an empty body counts as `{}`. */
export function parseJsonBody<T extends z.ZodType>(text: string, schema: T): z.infer<T> {
  let raw: unknown = {};
  if (text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new InvalidJsonError(`request body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = issue.path.map(String).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    });
    throw new ValidationError(`invalid request body: ${problems.join('; ')}`, parsed.error.issues);
  }
  return parsed.data;
}

/** A body that is not JSON at all. */
export class InvalidJsonError extends ValidationError {}

/** Sends a JSON response, ending in a newline so that consecutive curl outputs stay apart. */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

/** The answer to an AWS Query-protocol request. */
export interface QueryResponse {
  status: number;
  xml: string;
  requestId: string;
}

/** Sends an XML response, as the AWS Query protocols do. */
export function sendXml(response: ServerResponse, { status, xml, requestId }: QueryResponse): void {
  response.writeHead(status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': Buffer.byteLength(xml),
    'x-amzn-requestid': requestId,
  });
  response.end(xml);
}
