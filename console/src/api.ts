import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

/** Temporary AWS credentials, as `aws configure export-credentials` prints them. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: string;
}

/** Who is signed in, and how every request is authenticated. */
export type Session =
  | { kind: 'iam'; credentials: AwsCredentials; region: string }
  | { kind: 'jwt'; accessToken: string; idToken?: string; expiresAt: number };

/** An answer of the API other than 2xx, with its code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The API's base URL: the page is at {base}/console. */
export const apiBase = `${location.origin}${location.pathname.replace(/\/console\/?$/, '')}`;

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** Calls the approvals API, signing with SigV4 (IAM) or sending the access token (JWT). Non-2xx throws ApiError. */
export async function call<T>(session: Session, method: string, path: string, options: CallOptions = {}): Promise<Answer<T>> {
  const base = new URL(apiBase);
  const query = Object.fromEntries(Object.entries(options.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const fullPath = `${base.pathname.replace(/\/+$/, '')}${path}`;
  let headers: Record<string, string> = { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers };
  if (session.kind === 'jwt') {
    headers.authorization = `Bearer ${session.accessToken}`;
  } else {
    const { accessKeyId, secretAccessKey, sessionToken } = session.credentials;
    const signer = new SignatureV4({ service: 'execute-api', region: session.region, credentials: { accessKeyId, secretAccessKey, sessionToken }, sha256: Sha256 });
    const signed = await signer.sign({
      method,
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port ? Number(base.port) : undefined,
      path: fullPath,
      query,
      headers: { ...headers, host: base.host },
      body,
    });
    // The browser sends Host itself, with the value that was signed.
    headers = Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name.toLowerCase() !== 'host'));
  }
  const search = new URLSearchParams(query).toString();
  const response = await fetch(`${base.origin}${fullPath}${search ? `?${search}` : ''}`, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string }; message?: string } | undefined) ?? {};
    throw new ApiError(response.status, error.error?.code ?? String(response.status), error.error?.message ?? error.message ?? (text || response.statusText));
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

// The API's shapes: the types the API itself answers with, from lib (types only: nothing of lib's
// runtime, nor of node, reaches the bundle).
export type { ConnectionState } from '../../lib/domain/connection';
export type { ConnectionView as Connection, ServiceSummary } from '../../lib/approvals';
export type { CallerView as Me } from '../../lib/http/auth';
export type { ConsoleSettings } from '../../lib/http/static-assets';
export type { PolicyVersion as StoredPolicy } from '../../lib/aws/policy-store';
export type { PolicyVerdict } from '../../lib/policy-admin';
export type { PolicyPlan } from '../../lib/policy-plan';

/** Every connection state, as the API spells it (the queue's filter). */
export { CONNECTION_STATES as STATES } from '../../lib/domain/connection';
