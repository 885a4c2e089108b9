import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { count, countDecisions, METRIC, publishMetrics } from '../../lib/metrics';

// The functions' metrics are CloudWatch embedded-metric-format documents on stdout. CloudWatch
// makes metrics only of documents that follow the format, and an alarm finds its metric only by
// the exact namespace, name and set of dimensions.

let stdout: string[];

beforeEach(() => {
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  publishMetrics(); // nothing a test left behind reaches the next one
  vi.restoreAllMocks();
});

type Document = Record<string, unknown> & { _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit?: string }[] }[] } };

function written(): Document[] {
  return stdout
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Document);
}

const UNITS = new Set(['Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits', 'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second', 'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second', 'Terabits/Second', 'Count/Second', 'None']);

/** What CloudWatch's embedded metric format specification requires of a document, as broken rules. */
function emfProblems(document: Document): string[] {
  const problems: string[] = [];
  const { Timestamp, CloudWatchMetrics } = document._aws;
  if (!Number.isInteger(Timestamp) || Math.abs(Timestamp - Date.now()) > 60_000) problems.push(`Timestamp ${Timestamp} is not now in epoch milliseconds`);
  if (!Array.isArray(CloudWatchMetrics) || CloudWatchMetrics.length === 0) problems.push('no CloudWatchMetrics directive');
  for (const directive of CloudWatchMetrics) {
    if (typeof directive.Namespace !== 'string' || directive.Namespace.length < 1 || directive.Namespace.length > 255) problems.push(`namespace ${directive.Namespace}`);
    for (const set of directive.Dimensions) {
      if (set.length < 1 || set.length > 30) problems.push(`a dimension set of ${set.length}`);
      for (const name of set) if (typeof document[name] !== 'string') problems.push(`dimension ${name} is not a string member`);
    }
    if (directive.Metrics.length < 1 || directive.Metrics.length > 100) problems.push(`${directive.Metrics.length} metrics in one directive`);
    for (const { Name, Unit } of directive.Metrics) {
      const value = document[Name];
      const values = Array.isArray(value) ? value : [value];
      if (values.length > 100 || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) problems.push(`metric ${Name} is not a number or up to 100 numbers`);
      if (Unit !== undefined && !UNITS.has(Unit)) problems.push(`metric ${Name} has unit ${Unit}`);
    }
  }
  return problems;
}

describe('the metrics', () => {
  it("are written when the invocation ends, as one valid document in the stage's namespace with the service dimension", () => {
    count(METRIC.notificationsHandled, 3);
    count(METRIC.notificationsHandled, 2);
    count(METRIC.notificationFailures, 0);
    expect(written()).toEqual([]);

    publishMetrics();

    const [document, ...others] = written();
    expect(others).toEqual([]);
    expect(emfProblems(document!)).toEqual([]);
    expect(document).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: 'vpce-gatekeeper-test', Dimensions: [['service']], Metrics: [{ Name: 'NotificationsHandled', Unit: 'Count' }, { Name: 'NotificationFailures', Unit: 'Count' }] }] },
      service: 'vpce-gatekeeper',
      NotificationsHandled: [3, 2],
      NotificationFailures: 0,
    });
  });

  it('write decisions at once, one valid document per outcome with the dimension outcome', () => {
    countDecisions({ accept: 4, reject: 1 });

    const documents = written();
    expect(documents.flatMap(emfProblems)).toEqual([]);
    expect(documents).toMatchObject([
      { _aws: { CloudWatchMetrics: [{ Dimensions: [['service', 'outcome']], Metrics: [{ Name: 'Decisions' }] }] }, outcome: 'accept', Decisions: 4 },
      { _aws: { CloudWatchMetrics: [{ Dimensions: [['service', 'outcome']], Metrics: [{ Name: 'Decisions' }] }] }, outcome: 'reject', Decisions: 1 },
    ]);
  });

  it('write nothing for an invocation that counted nothing', () => {
    countDecisions({ accept: 0, reject: 0 });
    publishMetrics();

    expect(written()).toEqual([]);
  });

  it('start a new document rather than give a metric more than 100 values', () => {
    for (let i = 0; i < 150; i++) count(METRIC.actionFailures, 1);
    publishMetrics();

    const documents = written();
    expect(documents.flatMap(emfProblems)).toEqual([]);
    expect(documents.map((document) => (document.ActionFailures as number[]).length)).toEqual([100, 50]);
  });

  it("are what serverless.yml's alarms on them name: namespace, metric and exactly their dimensions", () => {
    const template = parseYaml(readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8'), { logLevel: 'silent' }) as {
      service: string;
      resources: { Resources?: Record<string, { Type: string; Properties: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: string }[] } }> }[];
    };
    // The test stage: vpce-gatekeeper-test, as POWERTOOLS_METRICS_NAMESPACE is set for the tests.
    const ours = template.resources
      .flatMap((part) => Object.values(part.Resources ?? {}))
      .filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm' && resource.Properties.Namespace === '${self:service}-${sls:stage}')
      .map(({ Properties: alarm }) => ({ ...alarm, Namespace: `${template.service}-test` }));
    expect(ours.length).toBeGreaterThan(0);
    for (const name of Object.values(METRIC)) count(name, 1);
    publishMetrics();

    const [document] = written();
    for (const alarm of ours) {
      const directive = document?._aws.CloudWatchMetrics.find((d) => d.Namespace === alarm.Namespace && d.Metrics.some((m) => m.Name === alarm.MetricName));
      expect(directive?.Dimensions).toContainEqual(alarm.Dimensions.map((dimension) => dimension.Name));
      for (const dimension of alarm.Dimensions) expect(document?.[dimension.Name]).toBe(dimension.Value);
    }
  });
});
