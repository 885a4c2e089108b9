import { readFileSync } from 'node:fs';
import { AcceptVpcEndpointConnectionsCommand, DescribeVpcEndpointServiceConfigurationsCommand } from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../handlers/reconcile';
import { getConnection } from '../../lib/aws/connection-store';
import { putPolicy } from '../../lib/aws/policy-store';
import { parsePolicy } from '../../lib/domain/policy';
import { fakeAws, newServiceId } from '../support/fake-ec2';
import { storeOldPolicyVersion } from '../support/table-fixtures';

const ALLOWED = '111122223333';
const scheduledEvent = JSON.parse(readFileSync(new URL('../../events/scheduled-reconcile.json', import.meta.url), 'utf8')) as unknown;
const context = { functionName: 'reconcile', awsRequestId: 'test-request', getRemainingTimeInMillis: () => 240_000 } as unknown as Context;

let aws: ReturnType<typeof fakeAws>;
let serviceId: string;
let stdout: string[];

/** The embedded-metric-format documents written to stdout, as metric name -> value (with the dimension `outcome` when set). */
function emittedMetrics(): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const line of stdout.join('').split('\n')) {
    if (!line.includes('"_aws"')) continue;
    const document = JSON.parse(line) as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Metrics: { Name: string }[] }[] } };
    for (const { Name } of document._aws.CloudWatchMetrics.flatMap((entry) => entry.Metrics)) {
      metrics[document.outcome ? `${Name}:${String(document.outcome)}` : Name] = Number(document[Name]);
    }
  }
  return metrics;
}

beforeEach(async () => {
  aws = fakeAws();
  serviceId = newServiceId();
  aws.ec2.on(DescribeVpcEndpointServiceConfigurationsCommand).resolves({ ServiceConfigurations: [{ ServiceId: serviceId }] });
  await putPolicy(serviceId, parsePolicy({ allow: [{ account: ALLOWED, label: 'acme-prod' }] }), { actor: 'test' });
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  aws.restore();
});

describe('reconcile', () => {
  it('decides a request no notification announced, and reports the run as metrics', async () => {
    const connection = aws.connect(serviceId, ALLOWED);

    const summary = await handler(scheduledEvent, context);

    expect(summary.totals).toMatchObject({ services: 1, connections: 1, firstSeen: 1, accepted: 1, failedServices: 0 });
    expect(aws.ec2).toHaveReceivedCommandWith(AcceptVpcEndpointConnectionsCommand, { ServiceId: serviceId, VpcEndpointIds: [connection.endpointId] });
    expect((await getConnection(serviceId, connection.endpointId))?.history[0]).toMatchObject({ type: 'first-seen', source: 'reconciled' });
    expect(emittedMetrics()).toMatchObject({ 'Decisions:accept': 1, DriftRepaired: 1, PendingConnections: 0, Revocations: 0, RevocationLimitHit: 0 });
  });

  it('decides nothing, fails and counts the failure when a policy cannot be read', async () => {
    aws.connect(serviceId, ALLOWED);
    await storeOldPolicyVersion(serviceId, 2, '{"allow":"everyone"}');

    await expect(handler(scheduledEvent, context)).rejects.toThrow('invalid policy: allow');

    expect(aws.ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
    expect(emittedMetrics()).toMatchObject({ ReconcileFailures: 1 });
  });

  it('refuses an event that is not an object', async () => {
    await expect(handler('run please' as unknown, context)).rejects.toThrow('the reconciler takes a scheduled event or an empty object');
  });
});
