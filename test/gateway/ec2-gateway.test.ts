import {
  AcceptVpcEndpointConnectionsCommand,
  DescribeVpcEndpointConnectionsCommand,
  EC2Client,
  RejectVpcEndpointConnectionsCommand,
  type State,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { actOnConnections, describeConnections } from '../../lib/aws/ec2-gateway';
import { EC2_ACTION_BATCH_SIZE, EC2_FILTER_VALUES_LIMIT } from '../../lib/engine/ports';

const ec2 = mockClient(EC2Client);
afterEach(() => ec2.reset());

const SERVICE = 'vpce-svc-0a1b2c3d4e5f60718';
// The SDK's types spell states as the API reference does; the wire does not.
const wire = (state: string) => state as State;
const ids = (n: number) => Array.from({ length: n }, (_, i) => `vpce-${String(i).padStart(17, '0')}`);

describe('describeConnections', () => {
  it('reads every page and normalizes state spelling and region', async () => {
    ec2
      .on(DescribeVpcEndpointConnectionsCommand)
      .resolvesOnce({
        VpcEndpointConnections: [
          { ServiceId: SERVICE, VpcEndpointId: 'vpce-00000000000000001', VpcEndpointOwner: '111122223333', VpcEndpointState: wire('PendingAcceptance') },
        ],
        NextToken: 'page-2',
      })
      .resolvesOnce({
        VpcEndpointConnections: [
          {
            ServiceId: SERVICE,
            VpcEndpointId: 'vpce-00000000000000002',
            VpcEndpointOwner: '111122223333',
            VpcEndpointState: wire('available'),
            VpcEndpointRegion: 'eu-west-1',
          },
        ],
      });

    const connections = await describeConnections({ serviceId: SERVICE });

    expect(connections).toEqual([
      expect.objectContaining({ endpointId: 'vpce-00000000000000001', state: 'pendingAcceptance', region: 'us-east-1' }),
      expect.objectContaining({ endpointId: 'vpce-00000000000000002', state: 'available', region: 'eu-west-1' }),
    ]);
    expect(ec2).toHaveReceivedNthCommandWith(DescribeVpcEndpointConnectionsCommand, 1, {
      Filters: [{ Name: 'service-id', Values: [SERVICE] }],
      MaxResults: 1000,
    });
    expect(ec2).toHaveReceivedNthCommandWith(DescribeVpcEndpointConnectionsCommand, 2, { NextToken: 'page-2' });
  });

  it('skips a connection EC2 describes without an id, owner or known state', async () => {
    ec2.on(DescribeVpcEndpointConnectionsCommand).resolves({
      VpcEndpointConnections: [{ ServiceId: SERVICE, VpcEndpointId: 'vpce-00000000000000001', VpcEndpointState: wire('weird') }],
    });
    expect(await describeConnections({ serviceId: SERVICE })).toEqual([]);
  });

  it('splits a long list of endpoint ids over filtered calls of at most 200 values', async () => {
    ec2.on(DescribeVpcEndpointConnectionsCommand).resolves({ VpcEndpointConnections: [] });
    await describeConnections({ endpointIds: ids(EC2_FILTER_VALUES_LIMIT + 1) });
    expect(ec2).toHaveReceivedCommandTimes(DescribeVpcEndpointConnectionsCommand, 2);
  });
});

describe('actOnConnections', () => {
  it('accepts a batch in one call and reports the per-item failures', async () => {
    ec2.on(AcceptVpcEndpointConnectionsCommand).resolves({
      Unsuccessful: [{ ResourceId: 'vpce-00000000000000003', Error: { Code: 'InvalidState', Message: 'already available' } }],
    });

    const failures = await actOnConnections('accept', SERVICE, ids(EC2_ACTION_BATCH_SIZE));

    expect(ec2).toHaveReceivedCommandTimes(AcceptVpcEndpointConnectionsCommand, 1);
    expect([...failures]).toEqual([['vpce-00000000000000003', { code: 'InvalidState', message: 'already available' }]]);
  });

  it('refuses more endpoints than EC2 takes in one call, without calling it', async () => {
    await expect(actOnConnections('accept', SERVICE, ids(EC2_ACTION_BATCH_SIZE + 1))).rejects.toThrow(RangeError);
    expect(ec2).not.toHaveReceivedAnyCommand();
  });

  it('rejects with RejectVpcEndpointConnections', async () => {
    ec2.on(RejectVpcEndpointConnectionsCommand).resolves({});
    await actOnConnections('reject', SERVICE, ids(2));
    expect(ec2).toHaveReceivedCommandWith(RejectVpcEndpointConnectionsCommand, { ServiceId: SERVICE, VpcEndpointIds: ids(2) });
    expect(ec2).not.toHaveReceivedCommand(AcceptVpcEndpointConnectionsCommand);
  });
});
