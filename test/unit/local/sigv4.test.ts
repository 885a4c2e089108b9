import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { verifySignature, type LocalPrincipal, type SignedRequest } from '../../../local/lambda/sigv4';

// The local API Gateway's SigV4 check, fed requests signed by the AWS SDK's own signer.

const PRINCIPAL: LocalPrincipal = {
  accessKeyId: 'LOCALVIEWER',
  secretAccessKey: 'local-viewer-secret',
  userArn: 'arn:aws:iam::000000000000:user/local-viewer',
  userId: 'AIDALOCALVIEWER',
  accountId: '000000000000',
};
const OPTIONS = { region: 'us-east-1', service: 'execute-api', principals: [PRINCIPAL] };

/** A GET /connections signed as the SDK signs it, as name/value pairs the way Node hands them over. */
async function signedRequest(): Promise<SignedRequest> {
  const signer = new SignatureV4({ service: 'execute-api', region: 'us-east-1', credentials: PRINCIPAL, sha256: Hash.bind(null, 'sha256') });
  const signed = await signer.sign({
    method: 'GET',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 3999,
    path: '/connections',
    query: { limit: '10' },
    headers: { host: '127.0.0.1:3999' },
  });
  return { method: 'GET', url: '/connections?limit=10', rawHeaders: Object.entries(signed.headers).flat(), body: Buffer.alloc(0) };
}

function withAuthorization(request: SignedRequest, change: (authorization: string) => string[]): SignedRequest {
  const rawHeaders: string[] = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const [name = '', value = ''] = [request.rawHeaders[i], request.rawHeaders[i + 1]];
    if (name.toLowerCase() === 'authorization') for (const replaced of change(value)) rawHeaders.push(name, replaced);
    else rawHeaders.push(name, value);
  }
  return { ...request, rawHeaders };
}

describe('the local SigV4 check', () => {
  it('accepts a request as the SDK signs it', async () => {
    expect(verifySignature(await signedRequest(), OPTIONS)).toMatchObject({ ok: true, principal: { userArn: PRINCIPAL.userArn } });
  });

  it('refuses a credential scope with parts after aws4_request, as AWS does', async () => {
    const request = withAuthorization(await signedRequest(), (value) => [value.replace('/aws4_request,', '/aws4_request/extra,')]);

    expect(verifySignature(request, OPTIONS)).toMatchObject({ ok: false, status: 403, message: expect.stringContaining('nothing more') });
  });

  it('refuses a request carrying two Authorization headers, even when the first is valid', async () => {
    const request = withAuthorization(await signedRequest(), (value) => [value, 'AWS4-HMAC-SHA256 Credential=x']);

    expect(verifySignature(request, OPTIONS)).toMatchObject({ ok: false, status: 403, message: expect.stringContaining('more than one Authorization') });
  });
});
