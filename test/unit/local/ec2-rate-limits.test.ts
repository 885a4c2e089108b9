import { describe, expect, it } from 'vitest';
import { Ec2RateLimiter, isMutating } from '../../../local/aws/ec2-rate-limits';
import { Faults } from '../../../local/aws/faults';
import { LOCAL_LOCATION as LOCAL } from '../../../local/aws/locations';

const HERE = '000000000000/us-east-1';

/** A clock the test moves by hand. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 0;
  return { now: () => time, advance: (ms) => (time += ms) };
}

function takeMany(take: () => boolean, times: number): number {
  let granted = 0;
  for (let i = 0; i < times; i++) if (take()) granted++;
  return granted;
}

describe("EC2's request-rate limits", () => {
  it('lets a burst of 100 Describe calls through, refuses the 101st, and refills 20 a second', () => {
    const clock = manualClock();
    const limiter = new Ec2RateLimiter(undefined, clock.now);

    const burst = takeMany(() => limiter.take('DescribeVpcEndpointConnections', HERE), 101);
    clock.advance(1000);
    const afterOneSecond = takeMany(() => limiter.take('DescribeVpcEndpointConnections', HERE), 100);

    expect(burst).toBe(100);
    expect(afterOneSecond).toBe(20);
  });

  it('lets 50 Accept calls through, then 5 a second', () => {
    const clock = manualClock();
    const limiter = new Ec2RateLimiter(undefined, clock.now);

    const burst = takeMany(() => limiter.take('AcceptVpcEndpointConnections', HERE), 60);
    clock.advance(2000);
    const afterTwoSeconds = takeMany(() => limiter.take('AcceptVpcEndpointConnections', HERE), 60);

    expect(burst).toBe(50);
    expect(afterTwoSeconds).toBe(10);
  });

  it('gives each API its own bucket', () => {
    const limiter = new Ec2RateLimiter(undefined, () => 0);
    takeMany(() => limiter.take('AcceptVpcEndpointConnections', HERE), 50);

    expect(limiter.take('AcceptVpcEndpointConnections', HERE)).toBe(false);
    expect(limiter.take('RejectVpcEndpointConnections', HERE)).toBe(true);
    expect(limiter.take('DescribeVpcEndpointConnections', HERE)).toBe(true);
  });

  it('gives each account and Region buckets of their own', () => {
    const limiter = new Ec2RateLimiter(undefined, () => 0);
    takeMany(() => limiter.take('AcceptVpcEndpointConnections', HERE), 50);

    expect(limiter.take('AcceptVpcEndpointConnections', HERE)).toBe(false);
    expect(limiter.take('AcceptVpcEndpointConnections', '000000000000/eu-west-1')).toBe(true);
    expect(limiter.take('AcceptVpcEndpointConnections', '222233334444/us-east-1')).toBe(true);
  });

  it('never holds more than its capacity, however long it rested', () => {
    const clock = manualClock();
    const limiter = new Ec2RateLimiter(undefined, clock.now);
    limiter.take('RejectVpcEndpointConnections', HERE);
    clock.advance(3_600_000);

    expect(takeMany(() => limiter.take('RejectVpcEndpointConnections', HERE), 100)).toBe(50);
  });

  it('counts Describe, Get and List calls as non-mutating, and Accept, Reject and Modify as mutating', () => {
    expect(['DescribeVpcEndpointServiceConfigurations', 'GetManagedPrefixListEntries', 'ListImagesInRecycleBin'].map(isMutating)).toEqual([false, false, false]);
    expect(['AcceptVpcEndpointConnections', 'RejectVpcEndpointConnections', 'ModifyVpcEndpointServicePermissions'].map(isMutating)).toEqual([true, true, true]);
  });
});

describe('the ec2RateLimits fault switch', () => {
  it('is on with the documented defaults, and false turns it off', () => {
    const faults = new Faults(Math.random, () => 0);
    const defaults = takeMany(() => faults.withinEc2RateLimit('AcceptVpcEndpointConnections', LOCAL), 60);

    faults.set({ ec2RateLimits: false });
    const unlimited = takeMany(() => faults.withinEc2RateLimit('AcceptVpcEndpointConnections', LOCAL), 1000);

    expect(defaults).toBe(50);
    expect(unlimited).toBe(1000);
  });

  it('takes buckets of its own, keeps the default for the kind left out, and {} restores the defaults', () => {
    const faults = new Faults(Math.random, () => 0);

    const inForce = faults.set({ ec2RateLimits: { mutating: { capacity: 3, refillPerSecond: 1 } } });
    const accepts = takeMany(() => faults.withinEc2RateLimit('AcceptVpcEndpointConnections', LOCAL), 10);
    const describes = takeMany(() => faults.withinEc2RateLimit('DescribeVpcEndpointConnections', LOCAL), 200);
    const restored = faults.set({ ec2RateLimits: {} });

    expect(inForce.ec2RateLimits).toEqual({ mutating: { capacity: 3, refillPerSecond: 1 }, nonMutating: { capacity: 100, refillPerSecond: 20 } });
    expect([accepts, describes]).toEqual([3, 100]);
    expect(restored.ec2RateLimits).toEqual({ mutating: { capacity: 50, refillPerSecond: 5 }, nonMutating: { capacity: 100, refillPerSecond: 20 } });
  });

  it('does not refill the buckets when another fault changes', () => {
    const faults = new Faults(Math.random, () => 0);
    takeMany(() => faults.withinEc2RateLimit('AcceptVpcEndpointConnections', LOCAL), 50);

    faults.set({ duplicateDeliveries: 2 });

    expect(faults.withinEc2RateLimit('AcceptVpcEndpointConnections', LOCAL)).toBe(false);
  });

  it('answers calls naming an unavailable service or endpoint, and only those', () => {
    const faults = new Faults();
    faults.set({ ec2UnavailableFor: ['vpce-svc-0000000000000000a'] });

    expect(faults.ec2UnavailableFor(['vpce-svc-0000000000000000a', 'vpce-0123456789abcdef0'])).toBe(true);
    expect(faults.ec2UnavailableFor(['vpce-svc-0000000000000000b'])).toBe(false);
  });
});
