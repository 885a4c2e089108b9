import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Verifies AWS Signature Version 4 on an incoming request, as API Gateway does
 * for routes with IAM authorization: the same canonical request, string to sign
 * and signing key, so that whatever `curl --aws-sigv4` or an AWS SDK signs for
 * a deployed stage is accepted here, and nothing else is.
 */

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** How far the request's time may be from ours, as AWS allows. */
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/** A fixed local identity: its access key, its secret, and the IAM user it stands for. */
export interface LocalPrincipal {
  accessKeyId: string;
  secretAccessKey: string;
  userArn: string;
  userId: string;
  accountId: string;
}

/** The request as it arrived: method, the raw path and query, every header as sent, the body bytes. */
export interface SignedRequest {
  method: string;
  /** Path and query exactly as on the request line. */
  url: string;
  /** Node's rawHeaders: name, value, name, value... */
  rawHeaders: string[];
  body: Buffer;
}

export type Verification =
  | { ok: true; principal: LocalPrincipal }
  | { ok: false; status: 401 | 403; message: string };

/** Checks a request's signature against the principals' secrets, for one region and service. */
export function verifySignature(
  request: SignedRequest,
  options: { region: string; service: string; principals: readonly LocalPrincipal[]; now?: Date },
): Verification {
  const headers = headerValues(request.rawHeaders);
  const authorizations = headers.get('authorization') ?? [];
  const [authorization] = authorizations;
  if (authorization === undefined) {
    return { ok: false, status: 401, message: `the request is not signed: sign it with SigV4 for region ${options.region}, service ${options.service}` };
  }
  // AWS refuses a request carrying two Authorization headers rather than picking one.
  if (authorizations.length > 1) return forbidden('the request has more than one Authorization header');
  const parsed = parseAuthorization(authorization);
  if (!parsed) return forbidden(`the Authorization header is not ${ALGORITHM} Credential=…, SignedHeaders=…, Signature=…`);
  const scopeParts = parsed.credential.split('/');
  const [accessKeyId, date, region, service, terminator] = scopeParts;
  const principal = options.principals.find((candidate) => candidate.accessKeyId === accessKeyId);
  if (!principal) return forbidden('the security token included in the request is invalid');
  // Exactly key/date/region/service/aws4_request: anything after the terminator is refused, as AWS does.
  if (scopeParts.length !== 5 || region !== options.region || service !== options.service || terminator !== 'aws4_request') {
    return forbidden(`the credential must be scoped to ACCESS_KEY/DATE/${options.region}/${options.service}/aws4_request, with nothing more`);
  }
  const amzDate = headers.get('x-amz-date')?.[0];
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date) {
    return forbidden('X-Amz-Date is missing, malformed or not the date of the credential scope');
  }
  const signedAt = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs((options.now ?? new Date()).getTime() - signedAt) > MAX_CLOCK_SKEW_MS) return forbidden('the signature has expired');
  if (!parsed.signedHeaders.includes('host')) return forbidden('the host header must be signed');
  const missing = parsed.signedHeaders.find((name) => !headers.has(name));
  if (missing) return forbidden(`signed header '${missing}' is not in the request`);

  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest(request, headers, parsed.signedHeaders))].join('\n');
  let key: Buffer = hmac(`AWS4${principal.secretAccessKey}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = hmac(key, stringToSign);
  const given = Buffer.from(parsed.signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return forbidden('the request signature does not match the signature computed from the request and the secret key');
  }
  return { ok: true, principal };
}

function canonicalRequest(request: SignedRequest, headers: Map<string, string[]>, signedHeaders: string[]): string {
  const [rawPath = '/', rawQuery = ''] = request.url.split(/\?(.*)/s);
  return [
    request.method.toUpperCase(),
    canonicalPath(rawPath),
    canonicalQuery(rawQuery),
    ...signedHeaders.map((name) => `${name}:${(headers.get(name) ?? []).map(trimValue).join(',')}`),
    '',
    signedHeaders.join(';'),
    sha256Hex(request.body),
  ].join('\n');
}

/** Each segment encoded again (AWS services other than S3 sign the path double-encoded). */
function canonicalPath(rawPath: string): string {
  return rawPath.split('/').map(uriEncode).join('/') || '/';
}

function canonicalQuery(rawQuery: string): string {
  return rawQuery
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const [name = '', value = ''] = pair.split(/=(.*)/s);
      return [uriEncode(decode(name)), uriEncode(decode(value))] as const;
    })
    .sort(([a, av], [b, bv]) => (a === b ? compare(av, bv) : compare(a, b)))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function parseAuthorization(header: string): { credential: string; signedHeaders: string[]; signature: string } | undefined {
  if (!header.startsWith(`${ALGORITHM} `)) return undefined;
  const fields = new Map(
    header
      .slice(ALGORITHM.length + 1)
      .split(',')
      .map((field): [string, string] => {
        const [name = '', value = ''] = field.trim().split(/=(.*)/s);
        return [name, value];
      }),
  );
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature || !/^[0-9a-f]{64}$/.test(signature)) return undefined;
  return { credential, signedHeaders: signedHeaders.split(';'), signature };
}

function headerValues(rawHeaders: string[]): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase();
    values.set(name, [...(values.get(name) ?? []), rawHeaders[i + 1] ?? '']);
  }
  return values;
}

/** RFC 3986 unreserved characters stay, everything else is %XX, as SigV4 requires. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function trimValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function forbidden(message: string): Verification {
  return { ok: false, status: 403, message };
}
