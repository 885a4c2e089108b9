import { config } from './config';

/**
 * The functions' metrics, in CloudWatch's embedded metric format (EMF): one JSON document per line
 * on stdout, from which CloudWatch Logs makes the metrics, in the namespace
 * POWERTOOLS_METRICS_NAMESPACE (one per stage, see serverless.yml) with the dimension
 * `service=vpce-gatekeeper`, which the alarms name. An invocation's counts are kept and written as
 * one document when it ends (lambdaHandler({ metrics: true }) in lib/lambda.ts).
 *
 * Written here rather than with Powertools Metrics, whose documents these are, field for field:
 * the format is one JSON line, and the library cost every cold start more than that (bench/README.md).
 */
const SERVICE = 'vpce-gatekeeper';
/** The most values of one metric one document may carry (CloudWatch's limit). */
const MAX_VALUES = 100;

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

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** This invocation's counts not yet written, by metric, in the order they were first counted. */
const pending = new Map<MetricName, number[]>();

/** Adds one count to the invocation's metrics. */
export function count(name: MetricName, value: number): void {
  const values = pending.get(name) ?? [];
  values.push(value);
  pending.set(name, values);
  if (values.length === MAX_VALUES) publishMetrics();
}

/** Counts decisions by outcome: a document of its own per outcome, with the dimension `outcome`, written at once. */
export function countDecisions(byOutcome: { accept: number; reject: number }): void {
  for (const [outcome, decided] of Object.entries(byOutcome)) {
    if (decided) write({ outcome }, { [METRIC.decisions]: decided });
  }
}

/** Writes the counts not yet written as one document, and forgets them; writes nothing when there are none. */
export function publishMetrics(): void {
  if (pending.size === 0) return;
  const values = Object.fromEntries([...pending].map(([name, counted]) => [name, counted.length === 1 ? counted[0] : counted]));
  pending.clear();
  write({}, values);
}

function write(dimensions: Record<string, string>, values: Record<string, number | number[] | undefined>): void {
  const document = {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: config().POWERTOOLS_METRICS_NAMESPACE,
          Dimensions: [['service', ...Object.keys(dimensions)]],
          Metrics: Object.keys(values).map((name) => ({ Name: name, Unit: 'Count' })),
        },
      ],
    },
    service: SERVICE,
    ...dimensions,
    ...values,
  };
  process.stdout.write(`${JSON.stringify(document)}\n`);
}
