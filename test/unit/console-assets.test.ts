import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../lib/errors';
import { consoleAsset, consoleCsp, consoleSettingsOf } from '../../lib/http/static-assets';

// What the console is told about signing in, and the Content-Security-Policy it is served with.

const IAM = { JWT_ISSUER_URL: '', CONSOLE_CLIENT_ID: '', CLI_CLIENT_ID: '', CLI_REDIRECT_URI: '', CONSOLE_AUTH_ORIGIN: '', AWS_REGION: 'eu-west-1' };
const COGNITO = {
  JWT_ISSUER_URL: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123',
  CONSOLE_CLIENT_ID: 'console-client',
  CLI_CLIENT_ID: '',
  CLI_REDIRECT_URI: '',
  CONSOLE_AUTH_ORIGIN: 'https://acme.auth.eu-west-1.amazoncognito.com',
  AWS_REGION: 'eu-west-1',
};

describe('the console settings and CSP', () => {
  it('signs in with SigV4 for the stage region when there is no JWT issuer, and may fetch only from the API', () => {
    const settings = consoleSettingsOf(IAM);

    expect(settings).toEqual({ auth: 'iam', region: 'eu-west-1', authOrigins: [] });
    expect(consoleCsp(settings)).toContain("connect-src 'self';");
  });

  it('signs in with OpenID Connect, and may fetch from the issuer and its token endpoint origins only', () => {
    const settings = consoleSettingsOf(COGNITO);

    expect(settings).toMatchObject({ auth: 'jwt', issuer: COGNITO.JWT_ISSUER_URL, clientId: 'console-client', cliClientId: 'console-client' });
    expect(settings).not.toHaveProperty('cliRedirectUri');
    expect(consoleCsp(settings)).toContain(
      "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com https://acme.auth.eu-west-1.amazoncognito.com;",
    );
    expect(consoleCsp(settings)).toMatch(/script-src 'self'; style-src 'self';/);
    expect(consoleCsp(settings)).toContain("frame-ancestors 'none'");
  });

  it("tells the CLI its own client id and exact redirect URI when the stage names them", () => {
    const settings = consoleSettingsOf({ ...COGNITO, CLI_CLIENT_ID: 'cli-client', CLI_REDIRECT_URI: 'http://localhost:8400/callback' });

    expect(settings).toMatchObject({ clientId: 'console-client', cliClientId: 'cli-client', cliRedirectUri: 'http://localhost:8400/callback' });
  });

  it('serves no file outside its build', async () => {
    const dist = new URL('../../console/dist/', import.meta.url);
    for (const name of ['../package.json', '..%2Fpackage.json', '.env', 'build.cjs']) {
      await expect(consoleAsset(dist, name, consoleSettingsOf(IAM))).rejects.toBeInstanceOf(NotFoundError);
    }
  });
});
