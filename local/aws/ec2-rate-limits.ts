/** One token bucket's shape: how many requests it holds, and how fast it refills. */
export interface BucketLimits {
  capacity: number;
  refillPerSecond: number;
}

/** EC2's rate limits: one bucket per API, sized by whether the API changes anything. */
export interface Ec2RateLimits {
  mutating: BucketLimits;
  nonMutating: BucketLimits;
}

/**
 * EC2's documented defaults per account and Region
 * (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html).
 */
export const DEFAULT_EC2_RATE_LIMITS: Ec2RateLimits = {
  mutating: { capacity: 50, refillPerSecond: 5 },
  nonMutating: { capacity: 100, refillPerSecond: 20 },
};

/** Describe*, Get* and List* read; everything else (Accept…, Reject…, Modify…) changes something. */
export function isMutating(action: string): boolean {
  return !/^(Describe|Get|List)/.test(action);
}

interface Bucket {
  tokens: number;
  refilledAt: number;
}

/**
 * EC2's request-rate token buckets: each API has its own in each account and
 * Region, starting full. A call takes one token; a call that finds its bucket
 * empty is refused and takes none.
 */
export class Ec2RateLimiter {
  private buckets = new Map<string, Bucket>();

  /** `now` in milliseconds; tests hand in their own clock. */
  constructor(
    private limits: Ec2RateLimits | false = DEFAULT_EC2_RATE_LIMITS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Takes a token for one call of `action` in `accountRegion` (`account/region`); false when its
   * bucket is empty (RequestLimitExceeded).
   */
  take(action: string, accountRegion: string): boolean {
    if (!this.limits) return true;
    const { capacity, refillPerSecond } = isMutating(action) ? this.limits.mutating : this.limits.nonMutating;
    const now = this.now();
    const key = `${accountRegion}/${action}`;
    const bucket = this.buckets.get(key) ?? { tokens: capacity, refilledAt: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.refilledAt) / 1000) * refillPerSecond);
    bucket.refilledAt = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** New limits (false: none); every bucket starts full again. */
  configure(limits: Ec2RateLimits | false): void {
    this.limits = limits;
    this.buckets.clear();
  }
}
