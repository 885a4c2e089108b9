import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { lambdaHandler } from '../../lib/lambda';
import { logger } from '../../lib/logger';

// Log entries name the invocation that wrote them. Lambda may run several invocations of a
// function in one process at once (AWS_LAMBDA_MAX_CONCURRENCY), and the local stack runs every
// function in one process: an entry must never carry another invocation's function or keys.

// This file's own configuration (the suite's is SILENT), read when the logger first writes.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

let lines: string[];

beforeEach(() => {
  lines = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
});

afterEach(() => vi.restoreAllMocks());

function context(functionName: string, awsRequestId: string): Context {
  return { functionName, awsRequestId, invokedFunctionArn: `arn:aws:lambda:us-east-1:111122223333:function:${functionName}`, memoryLimitInMB: '256' } as Context;
}

const entries = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

it('keeps the context and keys of invocations running at once apart, and forgets the keys when each ends', async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const slow = lambdaHandler(async (id: string) => {
    logger.appendKeys({ connection: id });
    await released;
    logger.info('slow done');
  });
  const quick = lambdaHandler(async (id: string) => {
    logger.appendKeys({ connection: id });
    logger.info('quick done');
  });

  const first = slow('vpce-1', context('notifications', 'r-1'));
  await quick('vpce-2', context('slack-notifier', 'r-2'));
  release();
  await first;
  logger.info('after both');

  expect(entries()).toMatchObject([
    { message: 'quick done', function_name: 'slack-notifier', function_request_id: 'r-2', connection: 'vpce-2' },
    { message: 'slow done', function_name: 'notifications', function_request_id: 'r-1', connection: 'vpce-1' },
    { message: 'after both' },
  ]);
  expect(entries()[2]).not.toHaveProperty('connection');
  expect(entries()[2]).not.toHaveProperty('function_name');
});
