import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { DescribeVpcEndpointServiceConfigurationsCommand } from '@aws-sdk/client-ec2';
import type { Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handler } from '../../handlers/reconcile';
import { getLatestPolicyVersion, putPolicy } from '../../lib/aws/policy-store';
import type { PolicyChangedEvent } from '../../lib/domain/outbound-event';
import { parsePolicy } from '../../lib/domain/policy';
import { fakeAws, newServiceId } from '../support/fake-ec2';

// A policy-changed event whose publish failed after its version was saved is
// published by the next reconcile run: never lost.

const scheduledEvent = JSON.parse(readFileSync(new URL('../../events/scheduled-reconcile.json', import.meta.url), 'utf8')) as unknown;
const context = { functionName: 'reconcile', awsRequestId: 'test-request', getRemainingTimeInMillis: () => 240_000 } as unknown as Context;

let aws: ReturnType<typeof fakeAws>;
let serviceId: string;

beforeEach(() => {
  aws = fakeAws();
  serviceId = newServiceId();
  aws.ec2.on(DescribeVpcEndpointServiceConfigurationsCommand).resolves({ ServiceConfigurations: [{ ServiceId: serviceId }] });
});

afterEach(() => aws.restore());

describe('reconcile and policy-changed events', () => {
  it('publishes the event a failed publish left with its version, once, and empties the outbox', async () => {
    const at = new Date(Date.now() - 5 * 60_000);
    const stranded: PolicyChangedEvent = {
      eventId: randomUUID(),
      eventType: 'policy-changed',
      occurredAt: at.toISOString(),
      serviceId,
      policyId: serviceId,
      version: 1,
      changedBy: 'alice',
    };
    // As replacePolicy leaves it when SNS fails after the version was saved.
    await putPolicy(serviceId, parsePolicy({ mode: 'manual' }), { actor: 'alice', expectedVersion: 0, at, outbox: [stranded] });

    await handler(scheduledEvent, context);
    await handler(scheduledEvent, context);

    expect(aws.events()).toMatchObject([{ eventId: stranded.eventId, eventType: 'policy-changed', policyId: serviceId, version: 1 }]);
    expect((await getLatestPolicyVersion(serviceId))?.outbox).toEqual([]);
  });
});
