import type { SNSEvent } from 'aws-lambda';

// Placeholder while the core is written: the local stack delivers SNS events here.
export async function handler(_event: SNSEvent): Promise<void> {
  throw new Error('not implemented yet');
}
