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

export const ec2Client = new EC2Client({ maxAttempts });
export const snsClient = new SNSClient({ maxAttempts });
export const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts }), {
  marshallOptions: { removeUndefinedValues: true },
});
