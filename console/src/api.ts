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

/** The console's settings, from config.json (GET /console/config.json). */
export interface ConsoleSettings {
  auth: 'iam' | 'jwt';
  region: string;
  issuer?: string;
  clientId?: string;
  /** The Slack channel approval requests go to, when the stage has Slack approvals. */
  slackChannel?: string;
}

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

// The API's shapes, as openapi.yaml describes them.

export type ConnectionState = 'pendingAcceptance' | 'pending' | 'available' | 'deleting' | 'deleted' | 'rejected' | 'failed' | 'expired' | 'partial';
export const STATES: ConnectionState[] = ['pendingAcceptance', 'pending', 'available', 'deleting', 'deleted', 'rejected', 'failed', 'expired', 'partial'];

export interface Decision {
  outcome: 'accept' | 'reject' | 'hold';
  acted: boolean;
  rule: string;
  reason: string;
  decidedBy: string;
  decidedAt: string;
}

export interface HistoryEvent {
  at: string;
  type: string;
  [detail: string]: unknown;
}

export interface Connection {
  serviceId: string;
  endpointId: string;
  ownerAccountId: string;
  region: string;
  state: ConnectionState;
  decision?: Decision;
  pendingAction?: { outcome: string; decidedBy: string; reason: string; status: string; leaseUntil: string };
  createdAt: string;
  updatedAt: string;
  history: HistoryEvent[];
}

export interface Me {
  principal: string;
  via: 'iam' | 'jwt';
  groups: string[];
  role: 'approver' | 'viewer';
}

export interface StoredPolicy {
  policyId: string;
  version: number;
  policy: Record<string, unknown>;
  createdAt: string;
  createdBy: string;
}

export interface PolicyPlan {
  policyId: string;
  baseVersion: number | null;
  changes: {
    serviceId: string;
    endpointId: string;
    ownerAccountId: string;
    state: ConnectionState;
    current: { outcome: string; rule: string };
    planned: { outcome: string; rule: string; reason: string };
    effect: 'accept' | 'reject' | 'revoke' | 'hold';
  }[];
  summary: Record<'accept' | 'reject' | 'revoke' | 'hold' | 'unchanged', number>;
  revocationLimit?: { serviceId: string; candidates: number; admitted: number; maxRevocationsPerRun: number; maxRevocationPercent: number }[];
}
