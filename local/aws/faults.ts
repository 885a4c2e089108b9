import { z } from 'zod';
import { parseSpoke, SPOKE_MESSAGE, type Spoke } from '../../lib/domain/spokes';
import { DEFAULT_EC2_RATE_LIMITS, Ec2RateLimiter, type Ec2RateLimits } from './ec2-rate-limits';
import { LOCAL_LOCATION, locationKey, sameLocation } from './locations';

const bucketLimitsSchema = z.strictObject({
  capacity: z.int().min(1).max(1_000_000),
  refillPerSecond: z.number().positive().max(1_000_000),
});

/**
 * Fault injection switches. Each is optional; a POST replaces the whole set, so `{}`
 * clears every fault. To add a switch: a field here, its neutral value in
 * NO_FAULTS, and a question on Faults that the affected component asks.
 */
export const faultSettingsSchema = z.strictObject({
  /** Fraction of EC2 calls answered with RequestLimitExceeded, without acting. */
  ec2ThrottleRate: z.number().min(0).max(1).optional(),
  /** How many times in total each inbound notification is delivered to the handler. */
  duplicateDeliveries: z.int().min(1).max(10).optional(),
  /** Delay each delivery by a random 0–250 ms, so that order is scrambled. */
  shuffleDeliveries: z.boolean().optional(),
  /** Fraction of EC2 calls answered with a 5xx (InternalError 500 or Unavailable 503), without acting. */
  ec2ErrorRate: z.number().min(0).max(1).optional(),
  /** Fraction of inbound notifications lost before delivery (published, never delivered). */
  dropNotifications: z.number().min(0).max(1).optional(),
  /**
   * Fraction of Accept/Reject calls after which the caller dies: EC2 acts, and its
   * answer never comes back, so the invocation times out before it records anything.
   */
  crashAfterEc2Call: z.number().min(0).max(1).optional(),
  /** While true, every DynamoDB request is answered 503 ServiceUnavailable. */
  dynamoUnavailable: z.boolean().optional(),
  /** EC2 calls that name one of these endpoint service or endpoint ids are answered 503 Unavailable, without acting. */
  ec2UnavailableFor: z.array(z.string().regex(/^vpce-(svc-)?[0-9a-f]{8,17}$/, 'must be vpce-svc-… or vpce-… ids')).max(1000).optional(),
  /**
   * EC2's request-rate limits, on unless turned off: `false` turns them off; buckets
   * given replace the documented defaults, and those left out keep them.
   */
  ec2RateLimits: z
    .union([z.literal(false), z.strictObject({ mutating: bucketLimitsSchema.optional(), nonMutating: bucketLimitsSchema.optional() })])
    .optional(),
  /** While true, every Organizations call is answered AccessDeniedException. */
  organizationsUnavailable: z.boolean().optional(),
  /**
   * Spokes (`account:region`) whose role cannot be assumed there (AccessDenied), and whose
   * sessions can do nothing in EC2 there (UnauthorizedOperation): as when the spoke's stack is gone.
   */
  spokeUnavailable: z
    .array(
      z.string().superRefine((entry, context) => {
        const spoke = parseSpoke(entry);
        if (!spoke) context.addIssue({ code: 'custom', message: SPOKE_MESSAGE });
        else if (sameLocation(spoke, LOCAL_LOCATION)) {
          context.addIssue({ code: 'custom', message: "is the local stack's own account and Region, which its functions reach without a role" });
        }
      }),
    )
    .max(100)
    .optional(),
  /**
   * DynamoDB's per-partition limits (1,000 write units and 3,000 read units a second
   * per partition key value, of the table and of each index), on unless turned off.
   */
  dynamoPartitionLimits: z.boolean().optional(),
});

export type FaultSettings = z.infer<typeof faultSettingsSchema>;
export type FaultsInForce = Required<Omit<FaultSettings, 'ec2RateLimits'>> & { ec2RateLimits: Ec2RateLimits | false };

const NO_FAULTS: FaultsInForce = {
  ec2ThrottleRate: 0,
  duplicateDeliveries: 1,
  shuffleDeliveries: false,
  ec2ErrorRate: 0,
  dropNotifications: 0,
  crashAfterEc2Call: 0,
  dynamoUnavailable: false,
  ec2UnavailableFor: [],
  ec2RateLimits: DEFAULT_EC2_RATE_LIMITS,
  organizationsUnavailable: false,
  spokeUnavailable: [],
  dynamoPartitionLimits: true,
};

const MAX_SHUFFLE_DELAY_MS = 250;

/** The faults in force, and the decisions that follow from them. */
export class Faults {
  private settings: FaultsInForce = { ...NO_FAULTS };
  private readonly rateLimiter: Ec2RateLimiter;

  /**
   * `random` returns a number in [0, 1), `now` milliseconds; tests may hand in a
   * fixed sequence and their own clock.
   */
  constructor(
    private readonly random: () => number = Math.random,
    now?: () => number,
  ) {
    this.rateLimiter = new Ec2RateLimiter(NO_FAULTS.ec2RateLimits, now);
  }

  /**
   * Replaces the settings; switches left out go back to no fault, and the rate
   * limits to EC2's defaults. The buckets start full only when the limits change.
   */
  set(settings: FaultSettings): FaultsInForce {
    const { ec2RateLimits, ...others } = settings;
    const limits = rateLimitsFrom(ec2RateLimits);
    if (JSON.stringify(limits) !== JSON.stringify(this.settings.ec2RateLimits)) this.rateLimiter.configure(limits);
    this.settings = { ...NO_FAULTS, ...withoutUndefined(others), ec2RateLimits: limits };
    return this.current();
  }

  /** No faults, the default rate limits, every bucket full. */
  clear(): void {
    this.settings = { ...NO_FAULTS };
    this.rateLimiter.configure(NO_FAULTS.ec2RateLimits);
  }

  current(): FaultsInForce {
    return structuredClone(this.settings);
  }

  /** Whether this call of `action` in `location` finds a token in its EC2 rate-limit bucket (takes it if so). */
  withinEc2RateLimit(action: string, location: Spoke): boolean {
    return this.rateLimiter.take(action, locationKey(location));
  }

  /** Whether the spoke role of this account cannot be assumed, or used, in this Region now (spokeUnavailable). */
  spokeUnavailable(location: Spoke): boolean {
    return this.settings.spokeUnavailable.some((entry) => {
      const spoke = parseSpoke(entry);
      return spoke !== undefined && sameLocation(spoke, location);
    });
  }

  /** Whether an EC2 call naming these ids is to be answered 503 Unavailable (ec2UnavailableFor). */
  ec2UnavailableFor(namedIds: readonly string[]): boolean {
    const unavailable = this.settings.ec2UnavailableFor;
    return unavailable.length > 0 && namedIds.some((id) => unavailable.includes(id));
  }

  // A rate of 0 draws nothing, so that a switch left off never disturbs another's sequence of draws.
  private happens(rate: number): boolean {
    return rate > 0 && this.random() < rate;
  }

  /** Whether this EC2 call is to be answered with RequestLimitExceeded. */
  throttleEc2Call(): boolean {
    return this.happens(this.settings.ec2ThrottleRate);
  }

  /** The 5xx status this EC2 call is to be answered with, if any. */
  ec2ServerError(): 500 | 503 | undefined {
    if (!this.happens(this.settings.ec2ErrorRate)) return undefined;
    return this.random() < 0.5 ? 500 : 503;
  }

  /** Whether this notification is lost before delivery. */
  dropNotification(): boolean {
    return this.happens(this.settings.dropNotifications);
  }

  /** Whether the caller of this Accept/Reject dies once EC2 has acted. */
  crashAfterEc2Call(): boolean {
    return this.happens(this.settings.crashAfterEc2Call);
  }

  /** Whether DynamoDB is unreachable now. */
  dynamoUnavailable(): boolean {
    return this.settings.dynamoUnavailable;
  }

  /** Whether Organizations refuses every call now. */
  organizationsUnavailable(): boolean {
    return this.settings.organizationsUnavailable;
  }

  /** How many times to deliver one notification. */
  deliveriesPerNotification(): number {
    return this.settings.duplicateDeliveries;
  }

  /** How long to hold one delivery back. */
  deliveryDelayMs(): number {
    return this.settings.shuffleDeliveries ? Math.floor(this.random() * (MAX_SHUFFLE_DELAY_MS + 1)) : 0;
  }
}

function withoutUndefined(settings: Omit<FaultSettings, 'ec2RateLimits'>): Partial<FaultsInForce> {
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
}

function rateLimitsFrom(setting: FaultSettings['ec2RateLimits']): Ec2RateLimits | false {
  if (setting === false) return false;
  return {
    mutating: setting?.mutating ?? DEFAULT_EC2_RATE_LIMITS.mutating,
    nonMutating: setting?.nonMutating ?? DEFAULT_EC2_RATE_LIMITS.nonMutating,
  };
}
