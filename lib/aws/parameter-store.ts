import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { config } from '../config';

/** Created on first use: only the Slack functions read parameters. */
let ssmClient: SSMClient | undefined;

/**
 * Reads a SecureString parameter from SSM Parameter Store, decrypted
 * (GetParameter WithDecryption). The value is a secret: callers keep it in
 * memory, and never log it or put it in the environment.
 */
export async function readSecureParameter(name: string, client: SSMClient = (ssmClient ??= new SSMClient({ maxAttempts: config().AWS_MAX_ATTEMPTS }))): Promise<string> {
  const output = await client.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
  const value = output.Parameter?.Value;
  if (!value) throw new Error(`SSM parameter ${name} has no value`);
  return value;
}
