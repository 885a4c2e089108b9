import { z } from 'zod';

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
  /** While true, every Organizations call is answered AccessDeniedException. */
  organizationsUnavailable: z.boolean().optional(),
});

export type FaultSettings = z.infer<typeof faultSettingsSchema>;
export type FaultsInForce = Required<FaultSettings>;

const NO_FAULTS: FaultsInForce = {
  ec2ThrottleRate: 0,
  duplicateDeliveries: 1,
  shuffleDeliveries: false,
  ec2ErrorRate: 0,
  dropNotifications: 0,
  crashAfterEc2Call: 0,
  dynamoUnavailable: false,
  organizationsUnavailable: false,
};

const MAX_SHUFFLE_DELAY_MS = 250;

/** The faults in force, and the decisions that follow from them. */
export class Faults {
  private settings: FaultsInForce = { ...NO_FAULTS };

  /** `random` returns a number in [0, 1); tests may hand in a fixed sequence. */
  constructor(private readonly random: () => number = Math.random) {}

  /** Replaces the settings; switches left out go back to no fault. */
  set(settings: FaultSettings): FaultsInForce {
    this.settings = { ...NO_FAULTS, ...withoutUndefined(settings) };
    return this.current();
  }

  clear(): void {
    this.settings = { ...NO_FAULTS };
  }

  current(): FaultsInForce {
    return { ...this.settings };
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

function withoutUndefined(settings: FaultSettings): Partial<FaultsInForce> {
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined));
}
