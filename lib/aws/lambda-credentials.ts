import { fromEnv } from '@aws-sdk/credential-provider-env';

/**
 * Stands in for @aws-sdk/credential-provider-node in the Lambda bundles
 * (esbuild.config.cjs aliases it here). Lambda gives every function its role's
 * credentials in the standard environment variables, so the default chain's
 * other sources (profiles, SSO, web identity, IMDS, and the STS/SSO clients they
 * need) would only cost cold-start time. Scripts and the local stack are not
 * bundled and keep the full chain.
 */
export function defaultProvider(init: Parameters<typeof fromEnv>[0] = {}): ReturnType<typeof fromEnv> {
  return fromEnv(init);
}
