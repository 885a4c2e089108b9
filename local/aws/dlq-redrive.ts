import { ListMessageMoveTasksCommand, SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';

const POLL_MS = 100;
const GIVE_UP_MS = 120_000;

/** What one message move task did, as POST /local/dlq/redrive answers. */
export interface RedriveSummary {
  taskHandle: string;
  status: string;
  /** Messages the task found in the dead-letter queue when it started. */
  toMove: number;
  moved: number;
  failureReason?: string;
}

/**
 * Redrives the dead-letter queue as an operator does deployed
 * (`aws sqs start-message-move-task --source-arn …`): over SQS's own wire
 * protocol, each message back to the queue it came from, and waits for the task
 * to finish.
 */
export async function redriveDeadLetters(sqsEndpoint: string, deadLetterQueueArn: string, ratePerSecond?: number): Promise<RedriveSummary> {
  const client = new SQSClient({ endpoint: sqsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    const { TaskHandle: taskHandle = '' } = await client.send(
      new StartMessageMoveTaskCommand({ SourceArn: deadLetterQueueArn, MaxNumberOfMessagesPerSecond: ratePerSecond }),
    );
    const deadline = Date.now() + GIVE_UP_MS;
    for (;;) {
      const { Results = [] } = await client.send(new ListMessageMoveTasksCommand({ SourceArn: deadLetterQueueArn, MaxResults: 1 }));
      const [task] = Results;
      if (task && task.Status !== 'RUNNING') {
        return {
          taskHandle,
          status: task.Status ?? 'UNKNOWN',
          toMove: task.ApproximateNumberOfMessagesToMove ?? 0,
          moved: task.ApproximateNumberOfMessagesMoved ?? 0,
          ...(task.FailureReason ? { failureReason: task.FailureReason } : {}),
        };
      }
      if (Date.now() > deadline) throw new Error(`the message move task was still running after ${GIVE_UP_MS / 1000} s`);
      await new Promise((done) => setTimeout(done, POLL_MS));
    }
  } finally {
    client.destroy();
  }
}
