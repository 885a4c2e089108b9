import { randomBytes } from 'node:crypto';
import { requestId as newRequestId } from './ids';
import { TokenBucket } from './token-bucket';
import { verifySignature, type LocalPrincipal } from '../lambda/sigv4';

/**
 * SSM Parameter Store, as much of it as the functions use: GetParameter over
 * AWS's JSON 1.1 protocol (`X-Amz-Target: AmazonSSM.GetParameter`), signed
 * with SigV4 for service `ssm`, answering SSM's errors (ParameterNotFound,
 * ThrottlingException beyond the standard throughput, the signature errors).
 * A SecureString comes back decrypted only when asked WithDecryption.
 */

export const SSM_TARGET_PREFIX = 'AmazonSSM.';
const REGION = 'us-east-1';
const ACCOUNT_ID = '000000000000';
/** Parameter Store's standard throughput: GetParameter and friends share 40 transactions a second. */
export const SSM_STANDARD_THROUGHPUT = { burst: 40, perSecond: 40 };
/** SSM's parameter names: letters, digits and .-_/ , at most 2048 characters. */
const PARAMETER_NAME = /^[\w./-]{1,2048}$/;

export interface StoredParameter {
  name: string;
  type: 'String' | 'SecureString';
  value: string;
}

export interface SsmRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  body: Buffer;
}

export interface SsmAnswer {
  status: number;
  body: string;
  requestId: string;
}

class SsmError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class LocalSsm {
  private readonly parameters = new Map<string, StoredParameter & { version: number; modifiedAt: number; ciphertext: string }>();
  private readonly bucket: TokenBucket;

  /** `now` in milliseconds paces the throughput; tests hand in their own clock. */
  constructor(
    private readonly principals: readonly LocalPrincipal[],
    now: () => number = () => performance.now(),
  ) {
    this.bucket = new TokenBucket(SSM_STANDARD_THROUGHPUT.burst, SSM_STANDARD_THROUGHPUT.perSecond, now);
  }

  /** Stores a parameter, as `aws ssm put-parameter` would. */
  put(parameter: StoredParameter): void {
    const version = (this.parameters.get(parameter.name)?.version ?? 0) + 1;
    this.parameters.set(parameter.name, { ...parameter, version, modifiedAt: Date.now() / 1000, ciphertext: randomBytes(48).toString('base64') });
  }

  answer(request: SsmRequest): SsmAnswer {
    const requestId = newRequestId();
    try {
      this.authenticate(request);
      if (!this.bucket.take()) throw new SsmError('ThrottlingException', 'Rate exceeded');
      const target = headerOf(request.rawHeaders, 'x-amz-target') ?? '';
      const operation = target.startsWith(SSM_TARGET_PREFIX) ? target.slice(SSM_TARGET_PREFIX.length) : '';
      if (operation !== 'GetParameter') throw new SsmError('UnknownOperationException', `The operation ${operation || target || '(none)'} is not supported`);
      return { status: 200, body: JSON.stringify(this.getParameter(parseInput(request.body))), requestId };
    } catch (error) {
      if (!(error instanceof SsmError)) throw error;
      return { status: error.status, body: JSON.stringify({ __type: error.type, message: error.message }), requestId };
    }
  }

  private authenticate(request: SsmRequest): void {
    const verified = verifySignature(request, { region: REGION, service: 'ssm', principals: this.principals });
    if (verified.ok) return;
    if (verified.status === 401) throw new SsmError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    if (/security token/.test(verified.message)) throw new SsmError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    throw new SsmError('InvalidSignatureException', verified.message);
  }

  private getParameter(input: Record<string, unknown>) {
    const { Name: name, WithDecryption: withDecryption = false } = input;
    if (typeof name !== 'string' || !PARAMETER_NAME.test(name.replace(/^arn:aws:ssm:[^:]+:\d{12}:parameter/, ''))) {
      throw new SsmError('ValidationException', `1 validation error detected: Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern`);
    }
    if (typeof withDecryption !== 'boolean') throw new SsmError('SerializationException', 'WithDecryption must be a boolean');
    const stored = this.parameters.get(name);
    if (!stored) throw new SsmError('ParameterNotFound', '');
    const value = stored.type === 'SecureString' && !withDecryption ? stored.ciphertext : stored.value;
    return {
      Parameter: {
        Name: stored.name,
        Type: stored.type,
        Value: value,
        Version: stored.version,
        LastModifiedDate: stored.modifiedAt,
        ARN: `arn:aws:ssm:${REGION}:${ACCOUNT_ID}:parameter/${stored.name.replace(/^\//, '')}`,
        DataType: 'text',
      },
    };
  }
}

function parseInput(body: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8') || '{}');
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new SsmError('SerializationException', 'Start of structure or map found where not expected.');
}

function headerOf(rawHeaders: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]?.toLowerCase() === name) return rawHeaders[i + 1];
  return undefined;
}
