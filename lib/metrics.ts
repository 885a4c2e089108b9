import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/**
 * The one metrics instance: CloudWatch embedded metric format on stdout, flushed
 * by middyfy({ metrics: true }) when an invocation ends. The namespace comes from
 * POWERTOOLS_METRICS_NAMESPACE (one per stage, see serverless.yml).
 */
export const metrics = new Metrics({ serviceName: 'vpce-gatekeeper' });

/** Metric names; serverless.yml alarms on some of them by these exact names. */
export const METRIC = {
  /** Accept and Reject decisions carried out, with dimension `outcome`. */
  decisions: 'Decisions',
  /** Connections still waiting for a decision when the reconciler looked. */
  pendingConnections: 'PendingConnections',
  /** Records the reconciler brought in line with EC2: first seen, state changed, crash recovered. */
  driftRepaired: 'DriftRepaired',
  /** Available connections rejected because their consumer is no longer allowed. */
  revocations: 'Revocations',
  /** Services whose revocations were withheld because they exceeded the safety limit. */
  revocationLimitHit: 'RevocationLimitHit',
  /** Accept/Reject calls EC2 refused or failed. */
  actionFailures: 'ActionFailures',
  /** Reconciler runs that failed (and decided nothing, when the table or a policy was unreadable). */
  reconcileFailures: 'ReconcileFailures',
  /** Allowed principals the reconciler added to or removed from services (sharing). */
  sharingChanges: 'SharingChanges',
  /** Notifications handled to the end. */
  notificationsHandled: 'NotificationsHandled',
  /** Notifications that failed and will be retried (or dead-lettered). */
  notificationFailures: 'NotificationFailures',
  /** Spokes a reconcile run could not reach (their role, or EC2 there): their connections wait. */
  spokeErrors: 'SpokeErrors',
} as const;

/** Counts decisions by outcome, one metric per outcome dimension. */
export function countDecisions(byOutcome: { accept: number; reject: number }): void {
  for (const [outcome, count] of Object.entries(byOutcome)) {
    if (!count) continue;
    const single = metrics.singleMetric();
    single.addDimension('outcome', outcome);
    single.addMetric(METRIC.decisions, MetricUnit.Count, count);
  }
}

/** Adds one count to the invocation's metrics. */
export function count(name: (typeof METRIC)[keyof typeof METRIC], value: number): void {
  metrics.addMetric(name, MetricUnit.Count, value);
}
