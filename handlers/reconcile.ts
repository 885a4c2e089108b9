import * as v from '../lib/validation';
import { reconcile, recordRunMetrics, type ReconcileSummary } from '../lib/reconciler';
import { lambdaHandler } from '../lib/lambda';
import { logger } from '../lib/logger';
import { count, METRIC } from '../lib/metrics';
import { ReconcileFailedError, ValidationError } from '../lib/errors';
import { config, outboundTopicArn } from '../lib/config';
import { migrateLegacyConnections } from '../lib/aws/table-migration';

/** How much of a run a stage's table migration may take (LEGACY_CONNECTIONS), of the function's 240 s. */
const MIGRATION_BUDGET_MS = 60_000;

// Fail at cold start, naming the variable, rather than halfway through a run.
config();
outboundTopicArn();

// The EventBridge schedule's event, or `{}` from an operator's `aws lambda invoke`:
// the run needs nothing from it.
const invocationSchema = v.looseObject({});

/**
 * Runs on a schedule: brings the table in line with EC2 for every managed
 * service, decides what notifications missed, enforces and applies pending
 * timeouts. Throws when any part failed, so that the run counts as an error
 * (and an alarm) and Lambda retries it.
 */
export const handler = lambdaHandler(
  async (event: unknown): Promise<ReconcileSummary> => {
    const parsed = v.safeParse(invocationSchema, event);
    if (!parsed.success) throw new ValidationError('the reconciler takes a scheduled event or an empty object', v.problems(parsed.issues));
    let summary: ReconcileSummary;
    try {
      // A stage upgraded from before the connections were sharded: move some of them first, where the last run stopped.
      if (config().LEGACY_CONNECTIONS) logger.info('table migration', { ...(await migrateLegacyConnections({ budgetMs: MIGRATION_BUDGET_MS })) });
      summary = await reconcile();
    } catch (error) {
      count(METRIC.reconcileFailures, 1);
      logger.error('reconcile run failed before deciding anything', { error });
      throw error;
    }
    recordRunMetrics(summary);
    logger.info('reconcile run finished', { ...summary.totals });
    // A service that failed, or actions that failed, make the run an error: counted, alarmed, retried.
    // Not the services of a spoke that could not be reached: that spoke fails alone (SpokeErrors, its alarm).
    const unreachable = new Set((summary.spokes ?? []).filter((spoke) => spoke.error).map((spoke) => `${spoke.providerAccountId}/${spoke.serviceRegion}`));
    const failed = summary.services.filter(
      (service) => (service.error || service.failed) && !unreachable.has(`${service.providerAccountId}/${service.serviceRegion}`),
    );
    if (failed.length) {
      count(METRIC.reconcileFailures, 1);
      const ids = failed.map((service) => (service.error ? `${service.serviceId} (${service.error.message})` : service.serviceId)).join(', ');
      throw new ReconcileFailedError(`${failed.length} of ${summary.services.length} services could not be fully reconciled: ${ids}`);
    }
    return summary;
  },
  { metrics: true },
);
