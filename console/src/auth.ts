import type { AwsCredentials, ConsoleSettings, Session } from './api';

// Everything about the sign-in lives in sessionStorage: it ends with the tab, and
// nothing is ever written to localStorage.
const SESSION_KEY = 'vpce-gatekeeper.session';
const PENDING_KEY = 'vpce-gatekeeper.oidc';

export function loadSession(): Session | undefined {
  const raw = sessionStorage.getItem(SESSION_KEY);
  if (!raw) return undefined;
  try {
    const session = JSON.parse(raw) as Session;
    if (session.kind === 'jwt' && session.expiresAt <= Date.now()) return forget();
    if (session.kind === 'iam' && session.credentials.expiration && Date.parse(session.credentials.expiration) <= Date.now()) return forget();
    return session;
  } catch {
    return forget();
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function forget(): undefined {
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  return undefined;
}

/**
 * Temporary credentials from what a user pastes: the JSON of
 * `aws configure export-credentials` (or of `aws sts assume-role`), or the
 * environment form (`export AWS_ACCESS_KEY_ID=...`, one per line).
 */
export function parseCredentials(text: string): AwsCredentials {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw new Error('that is not valid JSON');
    }
    const source = (json.Credentials as Record<string, unknown> | undefined) ?? json;
    const pick = (...names: string[]) => names.map((name) => source[name]).find((value): value is string => typeof value === 'string' && value !== '');
    return complete({
      accessKeyId: pick('AccessKeyId', 'accessKeyId'),
      secretAccessKey: pick('SecretAccessKey', 'secretAccessKey'),
      sessionToken: pick('SessionToken', 'sessionToken'),
      expiration: pick('Expiration', 'expiration'),
    });
  }
  const vars: Record<string, string> = {};
  for (const line of trimmed.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+|set\s+|\$env:)?([A-Z_]+)\s*=\s*["']?([^"'\s]*)["']?\s*$/.exec(line);
    if (match?.[1] && match[2] !== undefined) vars[match[1]] = match[2];
  }
  return complete({
    accessKeyId: vars.AWS_ACCESS_KEY_ID,
    secretAccessKey: vars.AWS_SECRET_ACCESS_KEY,
    sessionToken: vars.AWS_SESSION_TOKEN,
    expiration: vars.AWS_CREDENTIAL_EXPIRATION,
  });
}

function complete(found: Partial<AwsCredentials>): AwsCredentials {
  if (!found.accessKeyId || !found.secretAccessKey) {
    throw new Error('no access key id and secret access key found: paste the output of `aws configure export-credentials` or the AWS_* variables');
  }
  return {
    accessKeyId: found.accessKeyId,
    secretAccessKey: found.secretAccessKey,
    ...(found.sessionToken ? { sessionToken: found.sessionToken } : {}),
    ...(found.expiration ? { expiration: found.expiration } : {}),
  };
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

interface PendingSignIn {
  state: string;
  verifier: string;
  nonce: string;
  tokenEndpoint: string;
  redirectUri: string;
}

/** Where the IdP sends the browser back: this page, without query or fragment. */
function redirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

async function discover(issuer: string): Promise<Discovery> {
  const response = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the sign-in provider's discovery document answered ${response.status}`);
  return (await response.json()) as Discovery;
}

function randomText(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Starts the authorization code flow with PKCE: off to the provider's sign-in page. */
export async function startSignIn(settings: ConsoleSettings): Promise<void> {
  if (!settings.issuer || !settings.clientId) throw new Error('this stage has no consoleClientId: see docs/console.md');
  const discovery = await discover(settings.issuer);
  const pending: PendingSignIn = {
    state: randomText(16),
    verifier: randomText(32),
    nonce: randomText(16),
    tokenEndpoint: discovery.token_endpoint,
    redirectUri: redirectUri(),
  };
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(pending.verifier))));
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: pending.redirectUri,
    scope: 'openid profile',
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  location.assign(`${discovery.authorization_endpoint}?${params}`);
}

/** Back from the provider with ?code&state: exchanges the code (with the PKCE verifier) for tokens. */
export async function finishSignIn(settings: ConsoleSettings): Promise<Session | undefined> {
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  const error = params.get('error');
  if (!code && !error) return undefined;
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (error) throw new Error(`the sign-in provider refused: ${params.get('error_description') ?? error}`);
  const pending = raw ? (JSON.parse(raw) as PendingSignIn) : undefined;
  if (!pending || pending.state !== params.get('state')) throw new Error('this sign-in was not started here (state does not match): sign in again');
  const response = await fetch(pending.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: code ?? '',
      redirect_uri: pending.redirectUri,
      client_id: settings.clientId ?? '',
      code_verifier: pending.verifier,
    }),
  });
  const tokens = (await response.json()) as { access_token?: string; id_token?: string; expires_in?: number; error_description?: string; error?: string };
  if (!response.ok || !tokens.access_token) throw new Error(`the token endpoint refused: ${tokens.error_description ?? tokens.error ?? response.status}`);
  const session: Session = {
    kind: 'jwt',
    accessToken: tokens.access_token,
    ...(tokens.id_token ? { idToken: tokens.id_token } : {}),
    expiresAt: Date.now() + (tokens.expires_in ?? 3600) * 1000,
  };
  saveSession(session);
  return session;
}
