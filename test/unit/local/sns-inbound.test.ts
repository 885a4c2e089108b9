import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Faults } from '../../../local/faults';
import { InboundSns, type LambdaHandler, type LambdaSnsEvent } from '../../../local/sns-inbound';
import { LocalQueue } from '../../../local/sqs';

const TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:vpce-gatekeeper-local-notifications';
const RETRY_DELAY_MS = 500;

interface Invocation {
  event: LambdaSnsEvent;
  context: Context;
}

/** A handler that records its invocations and fails the first `failures` of them. */
function recordingHandler(failures = 0): { handler: LambdaHandler; invocations: Invocation[] } {
  const invocations: Invocation[] = [];
  const handler: LambdaHandler = async (event, context) => {
    invocations.push({ event, context });
    if (invocations.length <= failures) throw new Error(`failure ${invocations.length}`);
  };
  return { handler, invocations };
}

function inbound(handler: LambdaHandler, faults = new Faults()): InboundSns {
  const deadLetterQueue = new LocalQueue('http://127.0.0.1/aws/sqs/000000000000/dlq');
  return new InboundSns({ topicArn: TOPIC_ARN, functionName: 'fn', handler, faults, retryDelayMs: RETRY_DELAY_MS, deadLetterQueue });
}

function messageIdOf(invocation: Invocation | undefined): string | undefined {
  return invocation?.event.Records[0]?.Sns.MessageId;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.spyOn(process.stderr, 'write').mockReturnValue(true);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('inbound SNS delivery to the handler', () => {
  it('delivers one record shaped as Lambda delivers SNS events, with a Lambda context', async () => {
    const { handler, invocations } = recordingHandler();
    const topic = inbound(handler);

    const messageId = topic.publish('{"eventType":"Connect"}');
    await vi.advanceTimersByTimeAsync(0);

    const [invocation] = invocations;
    expect(invocation?.event).toEqual({
      Records: [
        {
          EventSource: 'aws:sns',
          EventVersion: '1.0',
          EventSubscriptionArn: expect.stringMatching(new RegExp(`^${TOPIC_ARN}:[0-9a-f-]{36}$`)),
          Sns: {
            Type: 'Notification',
            MessageId: messageId,
            TopicArn: TOPIC_ARN,
            Subject: null,
            Message: '{"eventType":"Connect"}',
            Timestamp: expect.any(String),
            SignatureVersion: '1',
            Signature: expect.any(String),
            SigningCertUrl: expect.stringMatching(/^https:\/\//),
            UnsubscribeUrl: expect.stringMatching(/^https:\/\//),
            MessageAttributes: {},
          },
        },
      ],
    });
    expect(invocation?.context).toMatchObject({ functionName: 'fn', functionVersion: '$LATEST', awsRequestId: expect.any(String) });
    expect(invocation?.context.getRemainingTimeInMillis()).toBeGreaterThan(0);
    expect(topic.messages().map((published) => published.message)).toEqual(['{"eventType":"Connect"}']);
  });

  it('retries a failed invocation twice with doubling delays, then dead-letters the event', async () => {
    const { handler, invocations } = recordingHandler(Infinity);
    const topic = inbound(handler);

    topic.publish('m');
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(RETRY_DELAY_MS);
    const afterFirstRetry = invocations.length;
    await vi.advanceTimersByTimeAsync(RETRY_DELAY_MS * 2);

    expect(afterFirstRetry).toBe(2);
    expect(invocations).toHaveLength(3);
    expect(new Set(invocations.map(messageIdOf)).size).toBe(1);
    expect(topic.deadLetters()).toEqual([
      {
        event: invocations[0]?.event,
        error: { errorType: 'Error', errorMessage: 'failure 3' },
        attempts: 3,
        failedAt: expect.any(String),
      },
    ]);
  });

  it('does not dead-letter an event that a retry handles', async () => {
    const { handler, invocations } = recordingHandler(1);
    const topic = inbound(handler);

    topic.publish('m');
    await vi.advanceTimersByTimeAsync(RETRY_DELAY_MS * 10);

    expect(invocations).toHaveLength(2);
    expect(topic.deadLetters()).toEqual([]);
  });

  it('delivers a notification as many times as duplicateDeliveries says, with the same MessageId', async () => {
    const { handler, invocations } = recordingHandler();
    const faults = new Faults();
    faults.set({ duplicateDeliveries: 3 });
    const topic = inbound(handler, faults);

    const messageId = topic.publish('m');
    await vi.advanceTimersByTimeAsync(0);

    expect(invocations.map(messageIdOf)).toEqual([messageId, messageId, messageId]);
    expect(new Set(invocations.map((invocation) => invocation.context.awsRequestId)).size).toBe(3);
  });

  it('scrambles the order of deliveries when shuffling', async () => {
    const { handler, invocations } = recordingHandler();
    const delays = [0.9, 0.1]; // the first message waits longest
    const faults = new Faults(() => delays.shift() ?? 0);
    faults.set({ shuffleDeliveries: true });
    const topic = inbound(handler, faults);

    topic.publish('first');
    topic.publish('second');
    await vi.advanceTimersByTimeAsync(250);

    expect(invocations.map((invocation) => invocation.event.Records[0]?.Sns.Message)).toEqual(['second', 'first']);
  });

  it('forgets scheduled deliveries and retries on reset', async () => {
    const { handler, invocations } = recordingHandler(Infinity);
    const faults = new Faults(() => 0.5);
    const topic = inbound(handler, faults);
    topic.publish('failing');
    await vi.advanceTimersByTimeAsync(0);
    faults.set({ shuffleDeliveries: true });
    topic.publish('still scheduled');

    await topic.reset(1000);
    await vi.advanceTimersByTimeAsync(60_000);

    expect(invocations.map((invocation) => invocation.event.Records[0]?.Sns.Message)).toEqual(['failing']);
    expect(topic.deadLetters()).toEqual([]);
    expect(topic.messages()).toEqual([]);
  });
});
