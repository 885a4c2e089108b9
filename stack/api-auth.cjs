'use strict';

/**
 * How the approvals API authenticates callers, from the stage parameters:
 *
 *   IAM (SigV4), the default: every route has `authorizer: { type: aws_iam }`.
 *   JWT, for teams on SSO: set both jwtIssuerUrl (an https OIDC issuer) and jwtAudience
 *   (comma-separated); every route then uses the JWT authorizer `sso` instead (an HTTP API
 *   route has exactly one authorizer).
 *
 * serverless.yml pulls these in through `${file(./stack/api-auth.cjs):<export>}`.
 */

function list(raw) {
  return String(raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** The JWT settings, or undefined for IAM; throws naming the parameter that is wrong. */
async function jwtSettings({ resolveVariable }) {
  const issuerUrl = String((await resolveVariable('param:jwtIssuerUrl')) ?? '').trim();
  const audience = list(await resolveVariable('param:jwtAudience'));
  if (!issuerUrl && !audience.length) return undefined;
  if (!issuerUrl || !audience.length) {
    throw new Error('params "jwtIssuerUrl" and "jwtAudience" go together: set both for the JWT authorizer, or neither for IAM');
  }
  if (!/^https:\/\/\S+$/.test(issuerUrl)) throw new Error(`param "jwtIssuerUrl" must be an https URL, not ${issuerUrl}`);
  // The console's and the CLI's tokens name their client (aud, or client_id in a Cognito access token).
  for (const parameter of ['consoleClientId', 'cliClientId']) {
    const clientId = String((await resolveVariable(`param:${parameter}`)) ?? '').trim();
    if (clientId && !audience.includes(clientId)) audience.push(clientId);
  }
  return { issuerUrl, audience };
}

/** The `authorizer` of every route. */
async function routeAuthorizer(context) {
  return (await jwtSettings(context)) ? { name: 'sso' } : { type: 'aws_iam' };
}

/** `provider.httpApi.authorizers`: the JWT authorizer when configured, else none. */
async function authorizers(context) {
  const jwt = await jwtSettings(context);
  return jwt ? { sso: { type: 'jwt', identitySource: '$request.header.Authorization', ...jwt } } : {};
}

module.exports = { routeAuthorizer, authorizers };
