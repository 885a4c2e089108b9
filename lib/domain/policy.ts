// zod/mini: the same validation as classic zod at a fraction of the cold-start
// cost, which matters here because every function loads this module.
import * as z from 'zod/mini';
import { ValidationError } from '../errors';
import { parseDuration } from './duration';

/** The policy id that covers every endpoint service without a policy of its own. */
export const DEFAULT_POLICY_ID = 'default';

export const policyIdSchema = z.union([z.literal(DEFAULT_POLICY_ID), z.string().check(z.regex(/^vpce-svc-[0-9a-f]{8,17}$/))], {
  error: "must be an endpoint service id (vpce-svc-…) or 'default'",
});

const accountId = z.string().check(z.regex(/^\d{12}$/, 'must be a 12-digit AWS account id'));
const label = z.string().check(z.minLength(1, 'must not be empty'), z.maxLength(128, 'must be at most 128 characters'));
const region = z.string().check(z.regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region such as us-east-1'));
const wholeNumber = () => z.int('must be a whole number');

const allowEntrySchema = z.strictObject({
  account: z.union([accountId, z.literal('*')], { error: "must be a 12-digit AWS account id or '*'" }),
  label: z.optional(label),
  expiresAt: z.optional(z.iso.datetime({ offset: true, error: 'must be an ISO 8601 timestamp such as 2027-06-30T00:00:00Z' })),
});

const denyEntrySchema = z.strictObject({
  account: accountId,
  label: z.optional(label),
});

export const policySchema = z
  .strictObject({
    mode: z._default(z.enum(['auto', 'manual', 'observe'], { error: 'must be auto, manual or observe' }), 'auto'),
    allow: z._default(z.array(allowEntrySchema), []),
    deny: z._default(z.array(denyEntrySchema), []),
    regions: z.optional(z.array(region).check(z.minLength(1, 'must name at least one region, or be left out'))),
    maxEndpointsPerAccount: z.optional(wholeNumber().check(z.positive('must be at least 1'))),
    onUnmatched: z._default(z.enum(['hold', 'reject'], { error: 'must be hold or reject' }), 'hold'),
    // Enforcement and pending timeouts (the reconciler). No defaults written into the
    // document: a policy reads back exactly as it was given; see revocationLimits() in enforcement.ts.
    enforce: z.optional(z.boolean({ error: 'must be true or false' })),
    maxRevocationsPerRun: z.optional(wholeNumber().check(z.minimum(0, 'must be 0 or more'))),
    maxRevocationPercent: z.optional(
      z.number({ error: 'must be a number' }).check(z.minimum(0, 'must be 0 or more'), z.maximum(100, 'must be at most 100')),
    ),
    pendingTimeout: z.optional(
      z.string({ error: 'must be an ISO 8601 duration such as P7D' }).check((ctx) => {
        const parsed = parseDuration(ctx.value);
        if ('problem' in parsed) ctx.issues.push({ code: 'custom', message: parsed.problem, input: ctx.value });
      }),
    ),
    onPendingTimeout: z.optional(z.enum(['reject', 'remind'], { error: 'must be reject or remind' })),
  })
  .check((ctx) => {
    if (ctx.value.onPendingTimeout !== undefined && ctx.value.pendingTimeout === undefined) {
      ctx.issues.push({ code: 'custom', path: ['onPendingTimeout'], message: 'needs pendingTimeout, the time after which it applies', input: ctx.value });
    }
  });

export type Policy = z.infer<typeof policySchema>;
export type AllowEntry = z.infer<typeof allowEntrySchema>;
export type DenyEntry = z.infer<typeof denyEntrySchema>;

/** Validates a policy document; the error names every offending field. */
export function parsePolicy(document: unknown): Policy {
  const parsed = policySchema.safeParse(document);
  if (!parsed.success) throw new ValidationError(`invalid policy: ${describeIssues(parsed.error)}`, parsed.error.issues);
  return parsed.data;
}

/** Schema issues as one sentence naming each offending field. */
export function describeIssues(error: z.core.$ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.reduce<string>(
        (text, part) => (typeof part === 'number' ? `${text}[${part}]` : text ? `${text}.${String(part)}` : String(part)),
        '',
      );
      if (issue.code === 'unrecognized_keys') {
        const where = path ? ` in ${path}` : '';
        return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}${where}`;
      }
      return `${path || '(document)'}: ${issue.message}`;
    })
    .join('; ');
}

/** What a consumer's connection request looks like to the policy. */
export interface ConnectionRequest {
  accountId: string;
  region: string;
}

export interface EvaluationContext {
  now: Date;
  /** The account's other endpoints on this service that are admitted (pending or available). */
  admittedEndpointsOfAccount: number;
}

export type Outcome = 'accept' | 'reject' | 'hold';

/** A decision and why: `rule` is machine-readable, `reason` is a sentence for humans. */
export interface Evaluation {
  outcome: Outcome;
  /** false when the policy only observes or is manual: record, never call EC2. */
  act: boolean;
  rule: string;
  reason: string;
}

/** Decides a connection request. With no policy, it holds: never auto-accept. */
export function evaluatePolicy(
  policy: Policy | undefined,
  request: ConnectionRequest,
  context: EvaluationContext,
): Evaluation {
  if (!policy) {
    return {
      outcome: 'hold',
      act: false,
      rule: 'no-policy',
      reason: `no policy covers this service and there is no default policy, so account ${request.accountId} waits for an approver`,
    };
  }
  const verdict = match(policy, request, context);
  switch (policy.mode) {
    case 'manual':
      return {
        outcome: 'hold',
        act: false,
        rule: 'mode:manual',
        reason: `the policy is manual, so every request waits for an approver (auto would have said: ${verdict.reason})`,
      };
    case 'observe':
      return { ...verdict, act: false, reason: `observe mode, nothing done: would ${verdict.outcome}; ${verdict.reason}` };
    case 'auto':
      return { ...verdict, act: verdict.outcome !== 'hold' };
  }
}

/** Where an account stands on a policy's lists, ignoring region and endpoint limits. */
export type Standing =
  | { kind: 'denied'; entry: DenyEntry }
  | { kind: 'allowed'; entry: AllowEntry }
  | { kind: 'expired'; entry: AllowEntry }
  | { kind: 'unlisted' };

/** Whether an account is denied, allowed (by which entry), allowed only by an expired entry, or on no list. */
export function standingOf(policy: Policy, accountId: string, now: Date): Standing {
  const denied = policy.deny.find((entry) => entry.account === accountId);
  if (denied) return { kind: 'denied', entry: denied };
  const candidates = policy.allow.filter((entry) => entry.account === accountId || entry.account === '*');
  // An entry for the account itself says more than the wildcard, so it is preferred.
  candidates.sort((a, b) => Number(b.account === accountId) - Number(a.account === accountId));
  const live = candidates.find((entry) => !isExpired(entry, now));
  if (live) return { kind: 'allowed', entry: live };
  const expired = candidates[0];
  return expired ? { kind: 'expired', entry: expired } : { kind: 'unlisted' };
}

function match(policy: Policy, request: ConnectionRequest, context: EvaluationContext): Omit<Evaluation, 'act'> {
  const { accountId } = request;
  const standing = standingOf(policy, accountId, context.now);
  if (standing.kind === 'denied') {
    const name = standing.entry.label ?? standing.entry.account;
    return { outcome: 'reject', rule: `deny:${name}`, reason: `account ${accountId} matched deny entry '${name}'` };
  }
  if (policy.regions && !policy.regions.includes(request.region)) {
    return unmatched(policy, `region ${request.region} is not one of the allowed regions (${policy.regions.join(', ')})`);
  }
  if (standing.kind !== 'allowed') {
    return unmatched(
      policy,
      standing.kind === 'expired'
        ? `allow entry '${nameOf(standing.entry)}' for account ${accountId} expired at ${standing.entry.expiresAt}`
        : `account ${accountId} is on neither the allow nor the deny list`,
    );
  }
  const live = standing.entry;
  const max = policy.maxEndpointsPerAccount;
  if (max !== undefined && context.admittedEndpointsOfAccount >= max) {
    return unmatched(
      policy,
      `account ${accountId} already has ${context.admittedEndpointsOfAccount} endpoint(s) admitted, the most allowed is ${max}`,
    );
  }
  return {
    outcome: 'accept',
    rule: `allow:${nameOf(live)}`,
    reason:
      live.account === '*'
        ? `account ${accountId} matched the allow entry for any account ('${nameOf(live)}')`
        : `account ${accountId} matched allow entry '${nameOf(live)}'`,
  };
}

function unmatched(policy: Policy, why: string): Omit<Evaluation, 'act'> {
  return {
    outcome: policy.onUnmatched === 'reject' ? 'reject' : 'hold',
    rule: `onUnmatched:${policy.onUnmatched}`,
    reason: `${why}; unmatched requests ${policy.onUnmatched === 'reject' ? 'are rejected' : 'wait for an approver'}`,
  };
}

function nameOf(entry: AllowEntry): string {
  return entry.label ?? entry.account;
}

function isExpired(entry: AllowEntry, now: Date): boolean {
  return entry.expiresAt !== undefined && Date.parse(entry.expiresAt) <= now.getTime();
}
