import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';

/**
 * API Gateway's JWT authorizer (HTTP API), for the local stack's JWT mode. As
 * AWS documents it: the token comes from the Authorization header (with or
 * without "Bearer "); its header must name a `kid`, and the key of the issuer's
 * JWKS with that kid (fetched from the issuer's discovery document over HTTP)
 * must verify its signature; `iss` must equal the issuer; `aud`, or
 * `client_id` when there is no aud, must be one of the configured audiences;
 * `exp` must be in the future, and `nbf` and `iat`, when present, in the past
 * (up to CLOCK_SKEW_SECONDS ahead, for an issuer whose clock runs fast). Only
 * RS256 is accepted, so `alg: none` never verifies. What reaches the function
 * is the claims, as strings: arrays as "[a b]".
 */

/**
 * How far ahead of this clock `nbf` and `iat` may be. AWS does not document the
 * skew its authorizer allows; one minute is within what JWT libraries commonly
 * allow, and erring strict keeps a token that works locally working deployed.
 */
export const CLOCK_SKEW_SECONDS = 60;

export interface JwtAuthorizerOptions {
  issuer: string;
  audiences: readonly string[];
}

export type JwtVerification =
  | { ok: true; claims: Record<string, string>; scopes: string[] | null }
  | { ok: false; message: string };

export class LocalJwtAuthorizer {
  private keys: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(private readonly options: JwtAuthorizerOptions) {}

  async verify(authorization: string | undefined): Promise<JwtVerification> {
    const token = authorization?.replace(/^Bearer\s+/i, '').trim();
    if (!token) return { ok: false, message: 'the Authorization header carries no token' };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.jwks(), {
        issuer: this.options.issuer,
        algorithms: ['RS256'],
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_SKEW_SECONDS, // for nbf; exp and iat are checked below
      }));
    } catch (error) {
      return { ok: false, message: describe(error) };
    }
    // A JWKS of one key verifies a token without a kid too; API Gateway matches keys by kid only.
    const { kid } = decodeProtectedHeader(token);
    if (typeof kid !== 'string' || !kid) return { ok: false, message: "the token's header names no kid, so no key of the issuer's JWKS is its" };
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.exp === 'number' && payload.exp <= now) return { ok: false, message: 'the token has expired' };
    if (typeof payload.iat === 'number' && payload.iat > now + CLOCK_SKEW_SECONDS) {
      return { ok: false, message: `the token's iat claim is not acceptable: issued ${payload.iat - now} s in the future` };
    }
    const audiences = payload.aud === undefined ? [payload.client_id] : [payload.aud].flat();
    if (!audiences.some((aud) => typeof aud === 'string' && this.options.audiences.includes(aud))) {
      return { ok: false, message: 'the token is for another audience (aud or client_id)' };
    }
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : null;
    return { ok: true, claims: asStrings(payload), scopes };
  }

  /** The issuer's key set, from the jwks_uri its discovery document names; fetched once, refreshed on an unknown kid. */
  private async jwks(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (!this.keys) {
      const response = await fetch(`${this.options.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
      if (!response.ok) throw new Error(`the issuer's discovery document answered ${response.status}`);
      const { jwks_uri: jwksUri } = (await response.json()) as { jwks_uri?: string };
      if (!jwksUri) throw new Error("the issuer's discovery document names no jwks_uri");
      this.keys = createRemoteJWKSet(new URL(jwksUri));
    }
    return this.keys;
  }
}

/** Claims as API Gateway hands them to the function: every value a string, arrays as "[a b]". */
function asStrings(payload: JWTPayload): Record<string, string> {
  return Object.fromEntries(
    Object.entries(payload).map(([name, value]) => [
      name,
      Array.isArray(value) ? `[${value.join(' ')}]` : typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value),
    ]),
  );
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `the token's ${error.claim} claim is not acceptable: ${error.message}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify';
  if (error instanceof errors.JWKSNoMatchingKey) return "no key of the issuer's JWKS verifies the token";
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the token is not signed with RS256';
  if (error instanceof errors.JOSEError) return `the token is not valid: ${error.message}`;
  return `the token could not be verified: ${error instanceof Error ? error.message : String(error)}`;
}
