import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

/**
 * A request path with every interpolated value encoded as one path segment, so that an id with a
 * space, a slash or `…` reaches the API as that id (and gets its 400), not as a broken signature:
 * apiPath`/services/${serviceId}/connections/${endpointId}`.
 */
export function apiPath(strings: TemplateStringsArray, ...segments: string[]): string {
  return strings.reduce((path, literal, i) => path + literal + (i < segments.length ? encodeRfc3986(segments[i] ?? '') : ''), '');
}

/** What API Gateway answered. */
export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the text when it is not JSON. */
  body: unknown;
}

/** How requests are authenticated: signed with SigV4 for execute-api (IAM), or with a bearer token (JWT). */
export type Authorization =
  | { kind: 'sigv4'; region: string; credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider }
  | { kind: 'bearer'; token: () => Promise<string> };

export interface ApprovalsClientOptions {
  /** The API's base URL: a stage's invoke URL, or the local stack's (http://127.0.0.1:3000). */
  baseUrl: string;
  auth: Authorization;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * Calls the approvals API with requests signed by SigV4 for `execute-api` (the
 * same signature `curl --aws-sigv4 "aws:amz:REGION:execute-api"` makes), or
 * carrying an SSO access token.
 */
export class ApprovalsClient {
  private readonly signer: SignatureV4 | undefined;
  private readonly base: URL;

  constructor(private readonly options: ApprovalsClientOptions) {
    this.base = new URL(options.baseUrl);
    const { auth } = options;
    this.signer =
      auth.kind === 'sigv4'
        ? new SignatureV4({ service: 'execute-api', region: auth.region, credentials: auth.credentials, sha256: Hash.bind(null, 'sha256') })
        : undefined;
  }

  /** Sends one request. `body` other than a string is sent as JSON. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    const query = Object.fromEntries(Object.entries(options.query ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined));
    const body = options.body === undefined || typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const fullPath = `${this.base.pathname.replace(/\/+$/, '')}${path}`;
    let headers: Record<string, string> = { host: this.base.host, ...options.headers };
    if (body !== undefined && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const { auth } = this.options;
    if (auth.kind === 'bearer') {
      headers.authorization = `Bearer ${await auth.token()}`;
    } else if (this.signer) {
      const signed = await this.signer.sign({
        method,
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port ? Number(this.base.port) : undefined,
        path: fullPath,
        query,
        headers,
        body,
      });
      headers = signed.headers;
    }
    const search = Object.entries(query)
      .map(([name, value]) => `${encodeRfc3986(name)}=${encodeRfc3986(value)}`)
      .join('&');
    const response = await fetch(`${this.base.origin}${fullPath}${search ? `?${search}` : ''}`, {
      method,
      headers: withoutHost(headers),
      body,
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: parseJson(text) };
  }
}

/** An answer of 400 or more in one line: status, error code and message. */
export function describeFailure(response: ApiResponse): string {
  const error = (response.body as { error?: { code?: string; message?: string }; message?: string } | undefined) ?? {};
  const message = error.error?.message ?? error.message ?? JSON.stringify(response.body);
  return `${response.status} ${error.error?.code ?? ''}: ${message}`.replace(' :', ':');
}

// fetch sets Host itself, to the same value that was signed.
function withoutHost(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'host'));
}

function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
