import { DynamoDBServiceException } from '@aws-sdk/client-dynamodb';
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { ConflictError, EC2ThrottledError } from '../../lib/errors';
import { errorResponse } from '../../lib/http/responses';

// What an error becomes over HTTP, on every route: the one mapping in lib/http/responses.ts.

const bodyOf = (response: ReturnType<typeof errorResponse>) => JSON.parse(response.body ?? '{}') as { error: { code: string; message: string } };

describe('errorResponse', () => {
  it('answers AWS throttling that outlasted the SDK retries with 503 and a Retry-After: EC2Throttled for EC2, Throttled for another service', () => {
    const ec2 = errorResponse(new EC2ServiceException({ name: 'RequestLimitExceeded', $fault: 'client', $metadata: { attempts: 8 }, message: 'Request limit exceeded.' }), 'r1');
    const dynamo = errorResponse(
      new DynamoDBServiceException({ name: 'ProvisionedThroughputExceededException', $fault: 'client', $metadata: { attempts: 8 }, message: 'too fast' }),
      'r2',
    );

    expect([ec2.statusCode, bodyOf(ec2).error.code, ec2.headers?.['retry-after']]).toEqual([503, 'EC2Throttled', '1']);
    expect(bodyOf(ec2).error.message).toBe("EC2 is throttling this stage's requests (RequestLimitExceeded); try again shortly");
    expect([dynamo.statusCode, bodyOf(dynamo).error.code, dynamo.headers?.['retry-after']]).toEqual([503, 'Throttled', '1']);
  });

  it('keeps the typed errors as they are, with a Retry-After on the 503 the approvals raise themselves', () => {
    expect(errorResponse(new ConflictError('decided elsewhere'), 'r').statusCode).toBe(409);
    expect(errorResponse(new EC2ThrottledError('throttled'), 'r').headers?.['retry-after']).toBe('1');
  });

  it('answers anything else with a 500 that names only the request id, even an error that merely calls itself RequestLimitExceeded', () => {
    const response = errorResponse(Object.assign(new Error('at 10.0.3.7'), { name: 'RequestLimitExceeded' }), 'req-7');

    expect(response.statusCode).toBe(500);
    expect(bodyOf(response)).toEqual({ error: { code: 'InternalError', message: 'the request failed; quote request id req-7 when reporting it' } });
    expect(response.headers?.['x-content-type-options']).toBe('nosniff');
  });
});
