import { describe, expect, it } from 'vitest';
import { Faults, faultSettingsSchema } from '../../../local/aws/faults';

describe('fault injection settings', () => {
  it('replaces the whole set: switches left out go back to no fault', () => {
    const faults = new Faults();

    faults.set({ ec2ThrottleRate: 0.3, duplicateDeliveries: 2 });
    const replaced = faults.set({ shuffleDeliveries: true });

    expect(replaced).toEqual({
      ec2ThrottleRate: 0,
      duplicateDeliveries: 1,
      shuffleDeliveries: true,
      ec2ErrorRate: 0,
      dropNotifications: 0,
      crashAfterEc2Call: 0,
      dynamoUnavailable: false,
      ec2UnavailableFor: [],
      ec2RateLimits: { mutating: { capacity: 50, refillPerSecond: 5 }, nonMutating: { capacity: 100, refillPerSecond: 20 } },
      organizationsUnavailable: false,
      spokeUnavailable: [],
      dynamoPartitionLimits: true,
    });
  });

  it('makes the spokes it names unavailable, and refuses entries that are not account:region or are the local stack itself', () => {
    const faults = new Faults();
    faults.set({ spokeUnavailable: ['222233334444:eu-west-1'] });

    expect(faults.spokeUnavailable({ accountId: '222233334444', region: 'eu-west-1' })).toBe(true);
    expect(faults.spokeUnavailable({ accountId: '222233334444', region: 'us-east-1' })).toBe(false);
    expect(faultSettingsSchema.safeParse({ spokeUnavailable: ['222233334444'] }).error?.issues[0]?.message).toBe(
      'must be account:region, such as 222233334444:eu-west-1',
    );
    expect(faultSettingsSchema.safeParse({ spokeUnavailable: ['000000000000:us-east-1'] }).success).toBe(false);
  });

  it('throttles the fraction of EC2 calls that the rate says', () => {
    const draws = [0.1, 0.29, 0.3, 0.9];
    const faults = new Faults(() => draws.shift() ?? 1);
    faults.set({ ec2ThrottleRate: 0.3 });

    const throttled = [1, 2, 3, 4].map(() => faults.throttleEc2Call());

    expect(throttled).toEqual([true, true, false, false]);
  });

  it('never throttles at rate 0 and always at rate 1', () => {
    const atZero = new Faults(() => 0);
    const atOne = new Faults(() => 0.999);
    atOne.set({ ec2ThrottleRate: 1 });

    expect(atZero.throttleEc2Call()).toBe(false);
    expect(atOne.throttleEc2Call()).toBe(true);
  });

  it('delays deliveries by 0 to 250 ms only when shuffling', () => {
    const faults = new Faults(() => 0.999);
    const unshuffled = faults.deliveryDelayMs();
    faults.set({ shuffleDeliveries: true });

    expect(unshuffled).toBe(0);
    expect(faults.deliveryDelayMs()).toBe(250);
  });

  it('answers the fraction of EC2 calls that ec2ErrorRate says with a 500 or a 503', () => {
    const draws = [0.1, 0.2, 0.1, 0.7, 0.9];
    const faults = new Faults(() => draws.shift() ?? 1);
    faults.set({ ec2ErrorRate: 0.5 });

    const answers = [1, 2, 3].map(() => faults.ec2ServerError());

    expect(answers).toEqual([500, 503, undefined]);
  });

  it('drops notifications and crashes callers only as often as their rates say, and never at 0', () => {
    const neverDraws = new Faults(() => {
      throw new Error('a switch that is off must not draw');
    });
    const always = new Faults(() => 0.999);
    always.set({ dropNotifications: 1, crashAfterEc2Call: 1, dynamoUnavailable: true });

    expect([neverDraws.dropNotification(), neverDraws.crashAfterEc2Call(), neverDraws.dynamoUnavailable()]).toEqual([false, false, false]);
    expect([always.dropNotification(), always.crashAfterEc2Call(), always.dynamoUnavailable()]).toEqual([true, true, true]);
  });

  it.each([{ ec2ThrottleRate: -0.1 }, { ec2ThrottleRate: 1.1 }, { duplicateDeliveries: 11 }, { duplicateDeliveries: 1.5 }, { other: 1 }, { dropNotifications: 2 }, { crashAfterEc2Call: -1 }, { dynamoUnavailable: 'yes' }, { ec2ErrorRate: 1.5 }, { ec2RateLimits: true }, { ec2RateLimits: { mutating: { capacity: 0, refillPerSecond: 1 } } }, { ec2RateLimits: { mutating: { capacity: 5 } } }, { ec2RateLimits: { describe: {} } }, { ec2UnavailableFor: ['i-123'] }, { dynamoPartitionLimits: 'on' }, { dynamoPartitionLimits: {} }])(
    'refuses %j',
    (body) => {
      expect(faultSettingsSchema.safeParse(body).success).toBe(false);
    },
  );
});
