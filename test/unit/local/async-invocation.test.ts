import { describe, expect, it } from 'vitest';
import { AsyncFunction } from '../../../local/lambda/async-invocation';

// The local stand-in for Lambda's asynchronous invocations (SNS invoking its subscriber).

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('an asynchronously invoked local function', () => {
  it('runs at most its concurrency at once, the rest in their turn, every event once', async () => {
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    const fn = new AsyncFunction({
      functionName: 'f',
      timeoutMs: 1_000,
      maxConcurrency: 3,
      handler: async (event) => {
        running += 1;
        most = Math.max(most, running);
        await settle(5);
        seen.push(event as number);
        running -= 1;
      },
    });

    for (let i = 0; i < 20; i++) fn.invoke(i);
    await settle(200);

    expect(most).toBe(3);
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(fn.activity()).toMatchObject({ running: 0, waiting: 0, completed: 20, failed: 0 });
  });

  it('retries a failed invocation after each delay, then drops the event', async () => {
    const attempts: number[] = [];
    const fn = new AsyncFunction({
      functionName: 'f',
      timeoutMs: 1_000,
      retryDelaysMs: [10, 20],
      handler: async () => {
        attempts.push(Date.now());
        throw new Error('Slack unreachable');
      },
    });

    fn.invoke({});
    await settle(150);

    expect(attempts).toHaveLength(3);
    expect(fn.activity()).toMatchObject({ failed: 3, dropped: 1, retrying: 0 });
  });
});
