import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SNSClient } from '@aws-sdk/client-sns';
import { config } from '../config';

// Created once per container. Endpoints, region and credentials come from the
// standard AWS environment (AWS_ENDPOINT_URL_EC2 and friends when run locally).
// The SDK's standard retry strategy backs off on throttling (RequestLimitExceeded,
// Throttling, ...) and 5xx; AWS_MAX_ATTEMPTS bounds the attempts.
const maxAttempts = config().AWS_MAX_ATTEMPTS;

export const ec2Client = withoutSdkLogging(new EC2Client({ maxAttempts }));
export const snsClient = withoutSdkLogging(new SNSClient({ maxAttempts }));
export const documentClient = DynamoDBDocumentClient.from(withoutSdkLogging(new DynamoDBClient({ maxAttempts })), {
  marshallOptions: { removeUndefinedValues: true },
});

/**
 * The client without the SDK's logger middleware. It hands every request and
 * answer, walked field by field to mask sensitive ones, to a logger these
 * clients do not have (the SDK's default discards it): a DynamoDB page of
 * records, or EC2's 1,000 connections, walked for nothing on every call (about
 * 4% of a reconcile run's CPU). The stack logs through lib/logger.ts.
 */
function withoutSdkLogging<T extends { middlewareStack: { remove(name: string): boolean } }>(client: T): T {
  client.middlewareStack.remove('loggerMiddleware');
  return client;
}
