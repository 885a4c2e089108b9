import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { ApprovalsClient, type ApiResponse, type RequestOptions } from './api-client';
import { CliError } from './cli-error';
import { refresh, type SsoSettings } from './sso';
import { readTokens, saveTokens, type SsoTokens } from './token-cache';

/**
 * How the CLI authenticates to one API. A stage says how it signs in at
 * GET /console/config.json (public, as the console reads it): IAM stages get
 * requests signed with SigV4 from the default AWS credential chain; JWT (SSO)
 * stages get the bearer token `vpce-gatekeeper login` cached, refreshed when it
 * is about to expire or the API answers 401.
 */

/** The stage's sign-in settings, from the console's config.json. */
export interface StageSettings {
  auth: 'iam' | 'jwt';
  region?: string;
  issuer?: string;
  clientId?: string;
  cliClientId?: string;
  cliRedirectUri?: string;
}

/** Refresh this long before the access token's expiry, so that it does not expire in flight. */
const EXPIRY_MARGIN_MS = 60_000;

/** What a stage says about signing in; undefined when it does not say (no console, or not this API). */
export async function stageSettings(baseUrl: string): Promise<StageSettings | undefined> {
  let response: Response;
  try {
    response = await fetch(new URL(`${new URL(baseUrl).pathname.replace(/\/+$/, '')}/console/config.json`, baseUrl));
  } catch (error) {
    throw new CliError(`cannot call ${baseUrl}: ${error instanceof Error ? error.message : String(error)}${causeOf(error)}`);
  }
  if (!response.ok) return undefined;
  try {
    const settings = (await response.json()) as StageSettings;
    return settings.auth === 'iam' || settings.auth === 'jwt' ? settings : undefined;
  } catch {
    return undefined;
  }
}

/** The SSO settings the CLI signs in with, from the stage's; throws when the stage is not an SSO stage. */
export function ssoSettingsOf(baseUrl: string, settings: StageSettings | undefined): SsoSettings {
  if (settings?.auth !== 'jwt' || !settings.issuer) {
    throw new CliError(`${baseUrl} does not sign in with SSO (its /console/config.json says ${settings ? `auth ${settings.auth}` : 'nothing'}): its requests are signed with AWS credentials, no login needed`);
  }
  const clientId = settings.cliClientId ?? settings.clientId;
  if (!clientId) throw new CliError(`${baseUrl} names no client id for the CLI (stage parameters cliClientId or consoleClientId): see docs/api.md`);
  return { issuer: settings.issuer, clientId, ...(settings.cliRedirectUri ? { redirectUri: settings.cliRedirectUri } : {}) };
}

/** An authenticated connection to the approvals API. */
export class ApiSession {
  private constructor(
    readonly baseUrl: string,
    private readonly client: ApprovalsClient,
    private tokens: SsoTokens | undefined,
  ) {}

  /** How requests to `baseUrl` are authenticated: cached SSO tokens, else what the stage asks for. */
  static async open(baseUrl: string, region: string | undefined): Promise<ApiSession> {
    const cached = await readTokens(baseUrl);
    if (cached) {
      const session: ApiSession = new ApiSession(baseUrl, new ApprovalsClient({ baseUrl, auth: { kind: 'bearer', token: () => session.accessToken() } }), cached);
      return session;
    }
    const settings = await stageSettings(baseUrl);
    if (settings?.auth === 'jwt') {
      throw new CliError(`${baseUrl} signs in with SSO (${settings.issuer ?? 'its OpenID Connect issuer'}): run \`vpce-gatekeeper login --api ${baseUrl}\` first`);
    }
    const credentials = defaultProvider();
    return new ApiSession(baseUrl, new ApprovalsClient({ baseUrl, auth: { kind: 'sigv4', region: region ?? settings?.region ?? regionOf(baseUrl), credentials } }), undefined);
  }

  /** Sends one request; with SSO, a 401 refreshes the tokens once and tries again. */
  async request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse> {
    let response = await this.send(method, path, options);
    if (response.status === 401 && this.tokens?.refreshToken) {
      this.tokens = await this.renew(this.tokens);
      response = await this.send(method, path, options);
    }
    return response;
  }

  /** What to do about a 401, for the error message. */
  get unauthorizedHint(): string {
    return this.tokens
      ? `the API refused the SSO token of ${this.tokens.name ?? this.tokens.subject ?? 'this sign-in'}: run \`vpce-gatekeeper login --api ${this.baseUrl}\` again`
      : 'the API refused the SigV4 signature: check the AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE) and --region';
  }

  private async send(method: string, path: string, options?: RequestOptions): Promise<ApiResponse> {
    try {
      return await this.client.request(method, path, options);
    } catch (error) {
      if (error instanceof CliError) throw error;
      if (error instanceof Error && error.name === 'CredentialsProviderError') throw new CliError(NO_CREDENTIALS, 1, { cause: error });
      throw new CliError(`cannot call ${this.baseUrl}: ${error instanceof Error ? error.message : String(error)}${causeOf(error)}`, 1, { cause: error });
    }
  }

  /** The access token, refreshed first when it expires within a minute. */
  private async accessToken(): Promise<string> {
    if (!this.tokens) throw new Error('no SSO tokens');
    if (Date.parse(this.tokens.expiresAt) - EXPIRY_MARGIN_MS <= Date.now()) this.tokens = await this.renew(this.tokens);
    return this.tokens.accessToken;
  }

  private async renew(tokens: SsoTokens): Promise<SsoTokens> {
    try {
      const fresh = await refresh(tokens);
      await saveTokens(fresh);
      return fresh;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new CliError(`${why}: run \`vpce-gatekeeper login --api ${this.baseUrl}\` to sign in again`, 1, { cause: error });
    }
  }
}

const NO_CREDENTIALS =
  'no AWS credentials found to sign the request with: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN ' +
  'for temporary ones), or AWS_PROFILE for a profile in ~/.aws/config (after `aws sso login` or `aws configure`)';

/** An execute-api URL names its region; anything else (the local stack) signs for AWS_REGION or us-east-1. */
function regionOf(baseUrl: string): string {
  const fromHost = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(baseUrl).hostname)?.[1];
  return fromHost ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

function causeOf(error: unknown): string {
  return error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
}
