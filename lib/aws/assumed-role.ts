import type { AwsCredentialIdentity } from '@smithy/types';

type Sts = typeof import('@aws-sdk/client-sts');

/**
 * A credentials provider that assumes a role with STS (in `region`, the Region it is used in, when
 * given), and again a few minutes before the credentials expire. The STS client is imported on
 * first use, so that functions that never assume a role do not load it at cold start.
 */
export function assumedRoleCredentials(role: { roleArn: string; externalId?: string; region?: string; maxAttempts: number }): () => Promise<AwsCredentialIdentity> {
  let current: AwsCredentialIdentity | undefined;
  let sts: Promise<{ client: InstanceType<Sts['STSClient']>; AssumeRoleCommand: Sts['AssumeRoleCommand'] }> | undefined;
  return async () => {
    if (current?.expiration && current.expiration.getTime() - Date.now() > 5 * 60_000) return current;
    sts ??= import('@aws-sdk/client-sts').then(({ STSClient, AssumeRoleCommand }) => ({
      client: new STSClient({ maxAttempts: role.maxAttempts, ...(role.region ? { region: role.region } : {}) }),
      AssumeRoleCommand,
    }));
    const { client, AssumeRoleCommand } = await sts;
    const { Credentials } = await client.send(
      new AssumeRoleCommand({ RoleArn: role.roleArn, RoleSessionName: 'vpce-gatekeeper', ExternalId: role.externalId, DurationSeconds: 3600 }),
    );
    if (!Credentials?.AccessKeyId || !Credentials.SecretAccessKey) throw new Error(`STS AssumeRole of ${role.roleArn} returned no credentials`);
    current = {
      accessKeyId: Credentials.AccessKeyId,
      secretAccessKey: Credentials.SecretAccessKey,
      sessionToken: Credentials.SessionToken,
      expiration: Credentials.Expiration,
    };
    return current;
  };
}
