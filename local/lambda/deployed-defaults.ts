/**
 * The notification queue and its event source mapping as serverless.yml deploys
 * them by default; the local stack uses the same unless told otherwise, and
 * test/stack/template.test.ts keeps the two in step.
 */
export const DEPLOYED_QUEUE_DEFAULTS = {
  batchSize: 1000,
  batchingWindowSeconds: 1,
  maximumConcurrency: 5,
  maxReceiveCount: 5,
  /** Six times the notification function's 30 s timeout, as AWS recommends for an SQS event source. */
  visibilityTimeoutSeconds: 180,
} as const;
