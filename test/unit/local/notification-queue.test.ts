import type { SQSEvent } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { batchItemFailures, EventSourceMapping, MAX_PAYLOAD_BYTES, type SqsLambdaHandler } from '../../../local/lambda/event-source-mapping';
import { Faults } from '../../../local/aws/faults';
import { InboundSns } from '../../../local/aws/sns-inbound';
import { LocalQueue, LocalSqs } from '../../../local/aws/sqs';

const ENDPOINT = 'http://127.0.0.1/aws/sqs';
const SNS_ENDPOINT = 'http://127.0.0.1/aws/sns';
const TOPIC = { accountId: '000000000000', region: 'us-east-1', topicArn: 'arn:aws:sns:us-east-1:000000000000:t' };
const VISIBILITY_MS = 10_000;

function queues(maxReceiveCount = 3) {
  const sqs = new LocalSqs();
  const deadLetters = sqs.add(new LocalQueue({ name: 'notifications-dlq', endpoint: ENDPOINT, visibilityTimeoutMs: VISIBILITY_MS }));
  const queue = sqs.add(
    new LocalQueue({ name: 'notifications', endpoint: ENDPOINT, visibilityTimeoutMs: VISIBILITY_MS, redrivePolicy: { deadLetterQueue: deadLetters, maxReceiveCount } }),
  );
  return { sqs, queue, deadLetters };
}

/** A function that records each batch and answers with what `answer` says. */
function recordingFunction(answer: (event: SQSEvent, call: number) => unknown = () => ({ batchItemFailures: [] })) {
  const batches: SQSEvent[] = [];
  const handler: SqsLambdaHandler = async (event) => {
    batches.push(event);
    const result = answer(event, batches.length);
    if (result instanceof Error) throw result;
    return result;
  };
  return { handler, batches };
}

function mapping(queue: LocalQueue, handler: SqsLambdaHandler, overrides: Partial<{ batchSize: number; maximumBatchingWindowMs: number; maximumConcurrency: number }> = {}) {
  return new EventSourceMapping({ queue, functionName: 'fn', handler, batchSize: 10, maximumBatchingWindowMs: 1000, maximumConcurrency: 2, functionTimeoutMs: 5_000, ...overrides });
}

const bodiesOf = (event: SQSEvent | undefined) => event?.Records.map((record) => record.body) ?? [];

beforeEach(() => {
  vi.useFakeTimers();
  vi.spyOn(process.stderr, 'write').mockReturnValue(true);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('the inbound topic delivers into the queue', () => {
  it('delivers each notification as the raw message body', () => {
    const { queue } = queues();
    const topic = new InboundSns({ topics: [TOPIC], queue, faults: new Faults(), endpoint: SNS_ENDPOINT });

    topic.publish('{"eventType":"Connect"}');

    expect(queue.messages().map((message) => message.body)).toEqual(['{"eventType":"Connect"}']);
  });

  it('delivers duplicateDeliveries copies, each its own queue message, and drops what dropNotifications loses', () => {
    const { queue } = queues();
    const faults = new Faults(() => 0.5);
    const topic = new InboundSns({ topics: [TOPIC], queue, faults, endpoint: SNS_ENDPOINT });

    faults.set({ duplicateDeliveries: 3 });
    topic.publish('kept');
    faults.set({ dropNotifications: 1 });
    topic.publish('lost');

    expect(queue.messages().map((message) => message.body)).toEqual(['kept', 'kept', 'kept']);
    expect(new Set(queue.messages().map((message) => message.messageId)).size).toBe(3);
    expect(topic.messages().map((message) => [message.message, message.dropped ?? false])).toEqual([
      ['kept', false],
      ['lost', true],
    ]);
  });

  it('holds copies back by up to 250 ms when shuffling, and forgets them on reset', async () => {
    const { queue } = queues();
    const draws = [0.9, 0.1];
    const faults = new Faults(() => draws.shift() ?? 0);
    const topic = new InboundSns({ topics: [TOPIC], queue, faults, endpoint: SNS_ENDPOINT });
    faults.set({ shuffleDeliveries: true });

    topic.publish('first');
    topic.publish('second');
    await vi.advanceTimersByTimeAsync(250);

    expect(queue.messages().map((message) => message.body)).toEqual(['second', 'first']);
  });
});

describe('the queue', () => {
  it('hides a received message for the visibility timeout, then hands it out again with its receive count', async () => {
    const { queue } = queues();
    queue.send('m');

    const [first] = queue.receive(10);
    const hidden = queue.receive(10);
    await vi.advanceTimersByTimeAsync(VISIBILITY_MS);
    const [again] = queue.receive(10);

    expect(first?.attributes.ApproximateReceiveCount).toBe('1');
    expect(hidden).toEqual([]);
    expect(again?.messageId).toBe(first?.messageId);
    expect(again?.attributes.ApproximateReceiveCount).toBe('2');
  });

  it('moves a message received maxReceiveCount times to the dead-letter queue instead of handing it out again', async () => {
    const { queue, deadLetters } = queues(2);
    queue.send('poison');

    queue.receive(1);
    await vi.advanceTimersByTimeAsync(VISIBILITY_MS);
    queue.receive(1);
    await vi.advanceTimersByTimeAsync(VISIBILITY_MS);
    const third = queue.receive(1);

    expect(third).toEqual([]);
    expect(queue.messages()).toEqual([]);
    expect(deadLetters.messages()).toEqual([expect.objectContaining({ body: 'poison', receiveCount: 2, deadLetterSourceArn: queue.arn })]);
  });

  it('moves dead letters back to the queue they came from with a message move task', async () => {
    const { sqs, queue, deadLetters } = queues(1);
    for (const body of ['a', 'b', 'c']) queue.send(body);
    queue.receive(10);
    await vi.advanceTimersByTimeAsync(VISIBILITY_MS);
    queue.receive(10); // all three go to the dead-letter queue

    const task = sqs.startMove(deadLetters, undefined, undefined);
    await vi.advanceTimersByTimeAsync(1000);

    expect(task).toMatchObject({ status: 'COMPLETED', toMove: 3, moved: 3 });
    expect(deadLetters.messages()).toEqual([]);
    expect(queue.messages().map((message) => [message.body, message.receiveCount])).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 0],
    ]);
  });

  it('refuses a move task from a queue that is no dead-letter queue, and a second task while one runs', () => {
    const { sqs, queue, deadLetters } = queues(1);
    for (let i = 0; i < 100; i++) deadLetters.send(`m${i}`, { messageId: `id-${i}`, sentAt: 0, deadLetterSourceArn: queue.arn });

    expect(() => sqs.startMove(queue, undefined, undefined)).toThrow('Source queue must be configured as a Dead Letter Queue.');
    sqs.startMove(deadLetters, undefined, 1);
    expect(() => sqs.startMove(deadLetters, undefined, undefined)).toThrow(/already a task running/);
  });
});

describe('the event source mapping', () => {
  it('gathers a batch for the batching window, then invokes with what it has', async () => {
    const { queue } = queues();
    const { handler, batches } = recordingFunction();
    const source = mapping(queue, handler, { maximumBatchingWindowMs: 1000 });
    source.start();

    queue.send('one');
    await vi.advanceTimersByTimeAsync(500);
    queue.send('two');
    const beforeWindowEnds = batches.length;
    await vi.advanceTimersByTimeAsync(600);
    source.stop();

    expect(beforeWindowEnds).toBe(0);
    expect(batches.map(bodiesOf)).toEqual([['one', 'two']]);
    expect(queue.messages()).toEqual([]);
  });

  it('invokes as soon as a batch is full, without waiting for the window', async () => {
    const { queue } = queues();
    const { handler, batches } = recordingFunction();
    const source = mapping(queue, handler, { batchSize: 3, maximumBatchingWindowMs: 60_000 });
    source.start();

    for (const body of ['a', 'b', 'c', 'd']) queue.send(body);
    await vi.advanceTimersByTimeAsync(50);
    source.stop();

    expect(batches.map(bodiesOf)).toEqual([['a', 'b', 'c']]);
  });

  it('deletes what went through and brings back only the reported failures, after the visibility timeout', async () => {
    const { queue } = queues();
    const { handler, batches } = recordingFunction((event, call) => ({
      batchItemFailures: call === 1 ? event.Records.filter((r) => r.body === 'fails once').map((r) => ({ itemIdentifier: r.messageId })) : [],
    }));
    const source = mapping(queue, handler, { maximumBatchingWindowMs: 0 });
    source.start();

    queue.send('fine');
    queue.send('fails once');
    await vi.advanceTimersByTimeAsync(100);
    const afterFirst = queue.messages().map((message) => message.body);
    await vi.advanceTimersByTimeAsync(VISIBILITY_MS);
    source.stop();

    expect(afterFirst).toEqual(['fails once']);
    expect(batches.map(bodiesOf)).toEqual([['fine', 'fails once'], ['fails once']]);
    expect(batches[1]?.Records[0]?.attributes.ApproximateReceiveCount).toBe('2');
    expect(queue.messages()).toEqual([]);
    expect(source.invocations().map((i) => [i.batchSize, i.ok, i.failedItems])).toEqual([
      [2, true, 1],
      [1, true, 0],
    ]);
  });

  it('brings the whole batch back when the function throws, times out or names a message not in the batch', async () => {
    for (const answer of [new Error('boom'), new Promise(() => undefined), { batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] }]) {
      const { queue } = queues();
      const handler: SqsLambdaHandler = async () => {
        const result = await answer;
        if (result instanceof Error) throw result;
        return result;
      };
      const source = mapping(queue, handler, { maximumBatchingWindowMs: 0 });
      source.start();

      queue.send('a');
      queue.send('b');
      await vi.advanceTimersByTimeAsync(5_100); // past the function timeout
      source.stop();

      expect(queue.messages().map((message) => message.body)).toEqual(['a', 'b']);
      expect(source.invocations()).toEqual([expect.objectContaining({ ok: false, batchSize: 2 })]);
    }
  });

  it('runs at most maximumConcurrency invocations at once', async () => {
    const { queue } = queues();
    let running = 0;
    let most = 0;
    const handler: SqsLambdaHandler = async () => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((done) => setTimeout(done, 100));
      running -= 1;
      return {};
    };
    const source = mapping(queue, handler, { batchSize: 1, maximumBatchingWindowMs: 0, maximumConcurrency: 3 });
    source.start();

    for (let i = 0; i < 12; i++) queue.send(`m${i}`);
    await vi.advanceTimersByTimeAsync(1000);
    source.stop();

    expect(most).toBe(3);
    expect(queue.messages()).toEqual([]);
    expect(source.invocations()).toHaveLength(12);
  });
});

describe('what AWS allows of an event source mapping', () => {
  it.each([
    [{ batchSize: 100, maximumBatchingWindowMs: 0 }, /BatchSize 100 is more than 10, which needs MaximumBatchingWindowInSeconds of at least 1/],
    [{ batchSize: 10_001, maximumBatchingWindowMs: 1000 }, /BatchSize 10001 is not between 1 and 10000/],
    [{ batchSize: 0 }, /BatchSize 0 is not between 1 and 10000/],
    [{ maximumBatchingWindowMs: 301_000 }, /MaximumBatchingWindowInSeconds 301 is not a whole number of seconds from 0 to 300/],
    [{ maximumBatchingWindowMs: 500 }, /MaximumBatchingWindowInSeconds 0.5 is not a whole number/],
    [{ maximumConcurrency: 1 }, /MaximumConcurrency 1 is not between 2 and 1000/],
  ])('refuses %j, as CreateEventSourceMapping does', (overrides, message) => {
    const { queue } = queues();
    expect(() => mapping(queue, recordingFunction().handler, overrides)).toThrow(message);
  });

  it('takes up to 10 without a window, and up to 10,000 with one', () => {
    const { queue } = queues();
    expect(() => mapping(queue, recordingFunction().handler, { batchSize: 10, maximumBatchingWindowMs: 0 })).not.toThrow();
    expect(() => mapping(queue, recordingFunction().handler, { batchSize: 10_000, maximumBatchingWindowMs: 1000 })).not.toThrow();
  });

  it("invokes with fewer than the batch size when the batch would pass Lambda's 6 MB payload limit", async () => {
    const { queue } = queues();
    const { handler, batches } = recordingFunction();
    const source = mapping(queue, handler, { batchSize: 10, maximumBatchingWindowMs: 0 });
    source.start();

    const megabyte = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 7; i++) queue.send(`${i}${megabyte}`);
    await vi.advanceTimersByTimeAsync(100);
    source.stop();

    expect(batches.map((event) => event.Records.length)).toEqual([5, 2]);
    expect(batches.every((event) => Buffer.byteLength(JSON.stringify(event)) <= MAX_PAYLOAD_BYTES)).toBe(true);
    expect(queue.messages()).toEqual([]);
  });
});

describe('reading batchItemFailures as Lambda does', () => {
  const batch = [{ messageId: 'a' }, { messageId: 'b' }];

  it.each([undefined, null, {}, { batchItemFailures: [] }, { batchItemFailures: null }, 'ok'])('reads %j as every message through', (response) => {
    expect(batchItemFailures(response, batch)).toEqual(new Set());
  });

  it('reads the identifiers of the messages that failed', () => {
    expect(batchItemFailures({ batchItemFailures: [{ itemIdentifier: 'b' }] }, batch)).toEqual(new Set(['b']));
  });

  it.each([{ batchItemFailures: [{ itemIdentifier: '' }] }, { batchItemFailures: [{ itemIdentifier: 'c' }] }, { batchItemFailures: [{}] }, { batchItemFailures: 'b' }])(
    'takes %j for a failure of the whole batch',
    (response) => {
      expect(() => batchItemFailures(response, batch)).toThrow(/whole batch/);
    },
  );
});
