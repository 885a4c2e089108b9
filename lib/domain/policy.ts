import * as v from '../validation';
import { ValidationError } from '../errors';
import { parseDuration } from './duration';
import {
  ACCOUNT_ID,
  ACCOUNT_ID_MESSAGE,
  ORGANIZATION_ID,
  ORGANIZATION_ID_MESSAGE,
  ORGANIZATIONAL_UNIT_ID,
  ORGANIZATIONAL_UNIT_ID_MESSAGE,
  REGION,
  REGION_MESSAGE,
  SERVICE_ID,
  SERVICE_ID_MESSAGE,
} from './ids';
import {
  distanceToOu,
  factsText,
  inOrganization,
  membershipFacts,
  unreadableReason,
  type Membership,
  type MembershipFacts,
} from './organization';
import { closest } from './suggest';
import { isSafeLine, UNSAFE_LINE_MESSAGE } from './text';

/** The policy id that covers every endpoint service without a policy of its own. */
export const DEFAULT_POLICY_ID = 'default';

/**
 * A named policy's id: lowercase letters, digits and hyphens, at most 64, not starting `vpce-`
 * (which would read as an endpoint id). A service tagged vpce-gatekeeper:policy=<name> is governed
 * by it, unless a policy has the service's own id.
 */
export const POLICY_NAME = /^(?!vpce-)[a-z0-9-]{1,64}$/;
/** The tag that assigns a service its named policy. */
export const POLICY_TAG = 'vpce-gatekeeper:policy';

const POLICY_ID_MESSAGE = `${SERVICE_ID_MESSAGE}, '${DEFAULT_POLICY_ID}', or a name of at most 64 lowercase letters, digits and hyphens (not starting vpce-)`;
export const policyIdSchema = v.pipe(
  v.string(POLICY_ID_MESSAGE),
  v.check((policyId) => policyId === DEFAULT_POLICY_ID || SERVICE_ID.test(policyId) || POLICY_NAME.test(policyId), POLICY_ID_MESSAGE),
);

/** Whether a policy id names a policy by name (neither 'default' nor a service id). */
export function isPolicyName(policyId: string): boolean {
  return policyId !== DEFAULT_POLICY_ID && !SERVICE_ID.test(policyId) && POLICY_NAME.test(policyId);
}

/** An account id that is not a string: YAML and JSON read 111122223333 unquoted as a number (and 012345678901 as 12345678901). */
const accountError = (expected: string) => (issue: { input?: unknown }) =>
  typeof issue.input === 'number' || typeof issue.input === 'bigint'
    ? `${expected}, written as a string in quotes: it was read as the number ${String(issue.input)}`
    : expected;
// Labels name entries in rules and reasons that operators read in terminals and the console.
const label = v.pipe(
  v.string(),
  v.minLength(1, 'must not be empty'),
  v.maxLength(128, 'must be at most 128 characters'),
  v.check(isSafeLine, UNSAFE_LINE_MESSAGE),
);
const region = v.pipe(v.string(), v.regex(REGION, REGION_MESSAGE));
const wholeNumber = (...checks: v.GenericValidation<number>[]) => v.pipe(v.number('must be a whole number'), v.integer('must be a whole number'), ...checks);

const organizationalUnitId = v.pipe(v.string(), v.regex(ORGANIZATIONAL_UNIT_ID, ORGANIZATIONAL_UNIT_ID_MESSAGE));
const organizationId = v.pipe(v.string(), v.regex(ORGANIZATION_ID, ORGANIZATION_ID_MESSAGE));

/** An RFC 3339 timestamp with seconds and a zone (`Z` or an offset), on a day that exists. */
const TIMESTAMP =
  /^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)|02-(?:0[1-9]|1\d|2[0-8])))T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

const TARGET_FIELDS = ['account', 'organizationalUnit', 'organization'] as const;

/** An entry names exactly one of an account, an organizational unit or an organization. */
const exactlyOneTarget = <T extends Partial<Record<(typeof TARGET_FIELDS)[number], string>>>() =>
  v.rawCheck<T>(({ dataset, addIssue }) => {
  if (!dataset.typed) return;
  const named = TARGET_FIELDS.filter((field) => dataset.value[field] !== undefined);
  if (named.length === 1) return;
  addIssue({
    message:
      named.length === 0
        ? 'needs one of account, organizationalUnit or organization'
        : `names ${named.join(' and ')}: an entry has exactly one of account, organizationalUnit or organization`,
  });
  });

const allowEntrySchema = v.pipe(
  v.strictObject({
    account: v.optional(
      v.pipe(
        v.string(accountError("must be a 12-digit AWS account id or '*'")),
        v.check((account) => account === '*' || ACCOUNT_ID.test(account), "must be a 12-digit AWS account id or '*'"),
      ),
    ),
    organizationalUnit: v.optional(organizationalUnitId),
    organization: v.optional(organizationId),
    label: v.optional(label),
    expiresAt: v.optional(v.pipe(v.string('must be an ISO 8601 timestamp such as 2027-06-30T00:00:00Z'), v.regex(TIMESTAMP, 'must be an ISO 8601 timestamp such as 2027-06-30T00:00:00Z'))),
  }),
  exactlyOneTarget(),
);

const denyEntrySchema = v.pipe(
  v.strictObject({
    account: v.optional(v.pipe(v.string(accountError(ACCOUNT_ID_MESSAGE)), v.regex(ACCOUNT_ID, ACCOUNT_ID_MESSAGE))),
    organizationalUnit: v.optional(organizationalUnitId),
    organization: v.optional(organizationId),
    label: v.optional(label),
  }),
  exactlyOneTarget(),
);

export const policySchema = v.pipe(
  v.strictObject({
    mode: v.optional(v.picklist(['auto', 'manual', 'observe'], 'must be auto, manual or observe'), 'auto'),
    allow: v.optional(v.array(allowEntrySchema), []),
    deny: v.optional(v.array(denyEntrySchema), []),
    regions: v.optional(v.pipe(v.array(region), v.minLength(1, 'must name at least one region, or be left out'))),
    maxEndpointsPerAccount: v.optional(wholeNumber(v.minValue(1, 'must be at least 1'))),
    onUnmatched: v.optional(v.picklist(['hold', 'reject'], 'must be hold or reject'), 'hold'),
    // Enforcement and pending timeouts (the reconciler). No defaults written into the
    // document: a policy reads back exactly as it was given; see revocationLimits() in enforcement.ts.
    enforce: v.optional(v.boolean('must be true or false')),
    maxRevocationsPerRun: v.optional(wholeNumber(v.minValue(0, 'must be 0 or more'))),
    maxRevocationPercent: v.optional(v.pipe(v.number('must be a number'), v.minValue(0, 'must be 0 or more'), v.maxValue(100, 'must be at most 100'))),
    pendingTimeout: v.optional(
      v.pipe(
        v.string('must be an ISO 8601 duration such as P7D'),
        v.rawCheck(({ dataset, addIssue }) => {
          if (!dataset.typed) return;
          const parsed = parseDuration(dataset.value);
          if ('problem' in parsed) addIssue({ message: parsed.problem });
        }),
      ),
    ),
    onPendingTimeout: v.optional(v.picklist(['reject', 'remind'], 'must be reject or remind')),
    // The service's allowed principals follow the allow list (the reconciler); off when left out.
    sharing: v.optional(v.picklist(['off', 'add', 'sync'], 'must be off, add or sync')),
  }),
  v.rawCheck(({ dataset, addIssue }) => {
    if (dataset.typed && dataset.value.onPendingTimeout !== undefined && dataset.value.pendingTimeout === undefined) {
      addIssue({
        message: 'needs pendingTimeout, the time after which it applies',
        path: [{ type: 'object', origin: 'value', input: dataset.value, key: 'onPendingTimeout', value: dataset.value.onPendingTimeout }],
      });
    }
  }),
);

export type Policy = v.InferOutput<typeof policySchema>;
export type AllowEntry = v.InferOutput<typeof allowEntrySchema>;
export type DenyEntry = v.InferOutput<typeof denyEntrySchema>;

/** A policy version whose document validates: what the engine decides by. */
export interface StoredPolicy {
  policyId: string;
  version: number;
  policy: Policy;
  createdAt: string;
  createdBy: string;
}

/**
 * A policy version as stored, whether or not its document still validates
 * (a later release may refuse what an earlier one wrote). `policy` is the
 * document as stored; `invalidReason` says why it no longer validates.
 */
export type PolicyVersion = Omit<StoredPolicy, 'policy'> &
  ({ valid: true; policy: Policy } | { valid: false; policy: unknown; invalidReason: string });

/**
 * What governs a service: no policy at all (every request is held), a policy,
 * or a stored version that no longer validates, by which nothing is decided
 * (fail closed) until a valid version replaces it.
 */
export type PolicyInForce =
  /** `reason`: why there is none (a tag naming a policy that does not exist). */
  | { kind: 'none'; reason?: string }
  | { kind: 'policy'; stored: StoredPolicy }
  | { kind: 'unreadable'; policyId: string; version: number; reason: string };

/**
 * The one rule of which policy governs a service: its own; else the policy its
 * vpce-gatekeeper:policy tag names (`policyTag`); else the default. A tag that
 * names no policy that exists governs it by nothing: every request is held,
 * never decided by the default in its stead (fail closed: a typo must not
 * admit). `versionOf` answers the newest version of a policy id (undefined: none).
 */
export function policyInForce(serviceId: string, versionOf: (policyId: string) => PolicyVersion | undefined, policyTag?: string): PolicyInForce {
  const own = versionOf(serviceId);
  if (!own && policyTag !== undefined && serviceId !== DEFAULT_POLICY_ID) {
    const named = isPolicyName(policyTag) ? versionOf(policyTag) : undefined;
    if (!named) return { kind: 'none', reason: `the service is tagged ${POLICY_TAG}=${policyTag}, and there is no such policy` };
    return inForceOf(named);
  }
  const version = own ?? (serviceId === DEFAULT_POLICY_ID ? undefined : versionOf(DEFAULT_POLICY_ID));
  if (!version) return { kind: 'none' };
  return inForceOf(version);
}

function inForceOf(version: PolicyVersion): PolicyInForce {
  if (!version.valid) {
    return {
      kind: 'unreadable',
      policyId: version.policyId,
      version: version.version,
      reason: `policy ${version.policyId} version ${version.version} no longer validates (${version.invalidReason}); nothing is decided by it until a valid version replaces it`,
    };
  }
  const { valid: _valid, ...stored } = version;
  return { kind: 'policy', stored };
}

/**
 * The services a policy governs among the managed ones: a service's own governs it; a named one
 * those tagged with its name that have none of their own; the default those with neither.
 */
export function servicesGovernedBy(
  policyId: string,
  managed: readonly string[],
  hasOwnPolicy: (serviceId: string) => boolean,
  policyTagOf: (serviceId: string) => string | undefined = () => undefined,
): string[] {
  if (policyId === DEFAULT_POLICY_ID) return managed.filter((serviceId) => !hasOwnPolicy(serviceId) && policyTagOf(serviceId) === undefined);
  if (isPolicyName(policyId)) return managed.filter((serviceId) => !hasOwnPolicy(serviceId) && policyTagOf(serviceId) === policyId);
  return managed.includes(policyId) ? [policyId] : [];
}

/** Validates a policy document; the error names every offending field. */
export function parsePolicy(document: unknown): Policy {
  const parsed = v.safeParse(policySchema, document);
  if (!parsed.success) throw new ValidationError(`invalid policy: ${describeIssues(parsed.issues, policySchema)}`, v.problems(parsed.issues));
  return parsed.output;
}

/**
 * Whether two validated policies say the same. Both are the schema's output, whose fields come in
 * the schema's order and only when given (or defaulted), so their JSON is equal exactly when they are.
 * (node:util's isDeepStrictEqual would do, and would cost the approvals API's every cold start about
 * 5 ms of CPU loading node:util, which nothing else there needs.)
 */
export function samePolicy(a: Policy, b: Policy): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Schema issues as one sentence naming each offending field; with the schema, an unknown field gets a "did you mean". */
export function describeIssues(issues: readonly v.Issue[], schema?: v.Schema): string {
  return issues
    .map((issue) => {
      const path = v.pathOf(issue);
      const unknown = v.unknownFields(issue);
      if (unknown) {
        const where = path ? ` in ${path}` : '';
        const known = schema ? v.fieldsAt(schema, v.keysOf(issue)) : [];
        const named = unknown.map((key) => {
          const guess = closest(key, known);
          return guess ? `'${key}' (did you mean '${guess}'?)` : `'${key}'`;
        });
        const listed = known.length && named.every((name) => !name.includes('did you mean')) ? ` (the fields are ${known.join(', ')})` : '';
        return `unknown field${unknown.length > 1 ? 's' : ''} ${named.join(', ')}${where}${listed}`;
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
  /**
   * The account's place in the organization, needed when the policy has entries
   * by OU or organization (see usesOrganization). Left out there, the policy
   * cannot tell and holds the request.
   */
  membership?: Membership;
}

export type Outcome = 'accept' | 'reject' | 'hold';

/** A decision and why: `rule` is machine-readable, `reason` is a sentence for humans. */
export interface Evaluation {
  outcome: Outcome;
  /** false when the policy only observes or is manual: record, never call EC2. */
  act: boolean;
  rule: string;
  reason: string;
  /** The organization facts the decision used, when the policy has entries by OU or organization. */
  organization?: MembershipFacts;
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
  const facts = usesOrganization(policy) ? { organization: membershipFacts(membershipOrUnread(request.accountId, context.membership)) } : {};
  switch (policy.mode) {
    case 'manual':
      return {
        outcome: 'hold',
        act: false,
        rule: 'mode:manual',
        reason: `the policy is manual, so every request waits for an approver (auto would have said: ${verdict.reason})`,
        ...facts,
      };
    case 'observe':
      return { ...verdict, act: false, reason: `observe mode, nothing done: would ${verdict.outcome}; ${verdict.reason}`, ...facts };
    case 'auto':
      return { ...verdict, act: verdict.outcome !== 'hold', ...facts };
  }
}

/** Whether a policy has entries by OU or organization, so that deciding needs the account's membership. */
export function usesOrganization(policy: Policy): boolean {
  return [...policy.allow, ...policy.deny].some((entry) => entry.account === undefined);
}

/** What an entry names: an account (or '*'), an organizational unit or an organization. */
export type EntryTarget =
  | { kind: 'account'; id: string }
  | { kind: 'organizationalUnit'; id: string }
  | { kind: 'organization'; id: string };

/** The one thing an entry names (the schema allows exactly one). */
export function targetOf(entry: AllowEntry | DenyEntry): EntryTarget {
  if (entry.organizationalUnit !== undefined) return { kind: 'organizationalUnit', id: entry.organizationalUnit };
  if (entry.organization !== undefined) return { kind: 'organization', id: entry.organization };
  return { kind: 'account', id: entry.account ?? '' };
}

/** An entry's name in rules and reasons: its label, else what it names. */
export function nameOf(entry: AllowEntry | DenyEntry): string {
  return entry.label ?? targetOf(entry).id;
}

/** Where an account stands on a policy's lists, ignoring region and endpoint limits. */
export type Standing =
  | { kind: 'denied'; entry: DenyEntry; why: string }
  | { kind: 'allowed'; entry: AllowEntry; why: string }
  | { kind: 'expired'; entry: AllowEntry }
  /** Below an allowed OU or in an allowed organization, but not ACTIVE. */
  | { kind: 'inactive'; entry: AllowEntry; why: string }
  /** An entry by OU or organization is in play and the organization could not be read. */
  | { kind: 'unreadable'; error: string }
  | { kind: 'unlisted'; why: string };

/**
 * Whether an account is denied, allowed (by which entry), allowed only by an
 * expired entry, or on no list. Precedence: a deny entry of any kind; then an
 * allow entry for the account itself, the OU entry nearest the account, an
 * organization entry, and '*'. OU and organization entries match members only;
 * allow entries among them match ACTIVE accounts only, deny entries whatever the
 * status. When such an entry is in play and the membership is unknown, the
 * answer is `unreadable`: never allowed on an unknown.
 */
export function standingOf(policy: Policy, accountId: string, now: Date, membership?: Membership): Standing {
  const known = membershipOrUnread(accountId, membership);
  const accountDeny = policy.deny.find((entry) => entry.account === accountId);
  if (accountDeny) return { kind: 'denied', entry: accountDeny, why: `account ${accountId} matched deny entry '${nameOf(accountDeny)}'` };
  const organizationDenies = policy.deny.filter((entry) => entry.account === undefined);
  if (organizationDenies.length && known.kind === 'unreadable') return { kind: 'unreadable', error: known.error };
  for (const entry of organizationDenies) {
    const matched = matchesOrganizationEntry(entry, known);
    if (matched) return { kind: 'denied', entry, why: `${describeMatch(accountId, entry, known)}; matched deny entry '${nameOf(entry)}'` };
  }

  const ownEntries = policy.allow.filter((entry) => entry.account === accountId);
  const ownLive = ownEntries.find((entry) => !isExpired(entry, now));
  if (ownLive) return { kind: 'allowed', entry: ownLive, why: `account ${accountId} matched allow entry '${nameOf(ownLive)}'` };

  const organizationAllows = policy.allow.filter((entry) => entry.account === undefined);
  if (organizationAllows.length && known.kind === 'unreadable') return { kind: 'unreadable', error: known.error };
  // Nearest OU first, then the organization: the most specific entry that matches speaks.
  const byOrganization = organizationAllows
    .map((entry) => ({ entry, distance: organizationDistance(entry, known) }))
    .filter((candidate): candidate is { entry: AllowEntry; distance: number } => candidate.distance !== undefined)
    .sort((a, b) => a.distance - b.distance)
    .map(({ entry }) => entry);
  const wildcard = policy.allow.filter((entry) => entry.account === '*');
  if (known.kind === 'member' && known.status === 'ACTIVE') {
    const live = byOrganization.find((entry) => !isExpired(entry, now));
    if (live) return { kind: 'allowed', entry: live, why: describeMatch(accountId, live, known) };
  }
  const anyLive = wildcard.find((entry) => !isExpired(entry, now));
  if (anyLive) return { kind: 'allowed', entry: anyLive, why: `account ${accountId} matched the allow entry for any account ('${nameOf(anyLive)}')` };
  const inactive = known.kind === 'member' && known.status !== 'ACTIVE' ? byOrganization.find((entry) => !isExpired(entry, now)) : undefined;
  if (inactive && known.kind === 'member') {
    return {
      kind: 'inactive',
      entry: inactive,
      why: `${describeMatch(accountId, inactive, known)}; only ACTIVE accounts match allow entries by OU or organization`,
    };
  }
  const expired = [...ownEntries, ...(known.kind === 'member' && known.status === 'ACTIVE' ? byOrganization : []), ...wildcard][0];
  if (expired) return { kind: 'expired', entry: expired };
  return { kind: 'unlisted', why: unlistedWhy(accountId, known, organizationAllows.length > 0) };
}

function membershipOrUnread(accountId: string, membership: Membership | undefined): Membership {
  return membership ?? { kind: 'unreadable', accountId, error: 'not read' };
}

function matchesOrganizationEntry(entry: AllowEntry | DenyEntry, membership: Membership): boolean {
  return organizationDistance(entry, membership) !== undefined;
}

/** How far the entry's OU is above the account (the organization counts as farther than any OU); undefined: no match. */
function organizationDistance(entry: AllowEntry | DenyEntry, membership: Membership): number | undefined {
  const target = targetOf(entry);
  if (target.kind === 'organizationalUnit') return distanceToOu(membership, target.id);
  if (target.kind === 'organization') return inOrganization(membership, target.id) ? Number.MAX_SAFE_INTEGER : undefined;
  return undefined;
}

function describeMatch(accountId: string, entry: AllowEntry | DenyEntry, membership: Membership): string {
  if (membership.kind !== 'member') return `account ${accountId} matched '${nameOf(entry)}'`;
  const target = targetOf(entry);
  const where = target.kind === 'organizationalUnit' ? `OU ${target.id}` : `organization ${target.id}`;
  const label = entry.label ? ` (${entry.label})` : '';
  return `account ${accountId} is in ${where}${label}: ${factsText(membership)}`;
}

function unlistedWhy(accountId: string, membership: Membership, organizationInPlay: boolean): string {
  if (organizationInPlay && membership.kind === 'outside') {
    return `account ${accountId} is not an account of organization ${membership.organizationId} (read at ${membership.readAt}) and is on neither the allow nor the deny list`;
  }
  if (organizationInPlay && membership.kind === 'member') {
    return `account ${accountId} is in ${factsText(membership)}, below no allowed OU, and is on neither the allow nor the deny list`;
  }
  return `account ${accountId} is on neither the allow nor the deny list`;
}

function match(policy: Policy, request: ConnectionRequest, context: EvaluationContext): Omit<Evaluation, 'act'> {
  const { accountId } = request;
  const standing = standingOf(policy, accountId, context.now, context.membership);
  if (standing.kind === 'denied') {
    return { outcome: 'reject', rule: `deny:${nameOf(standing.entry)}`, reason: standing.why };
  }
  if (standing.kind === 'unreadable') {
    // Fail closed whatever onUnmatched says: a rule that could deny cannot be evaluated.
    return { outcome: 'hold', rule: 'organization-unreadable', reason: unreadableReason(standing.error) };
  }
  if (policy.regions && !policy.regions.includes(request.region)) {
    return unmatched(policy, `region ${request.region} is not one of the allowed regions (${policy.regions.join(', ')})`);
  }
  if (standing.kind !== 'allowed') {
    return unmatched(
      policy,
      standing.kind === 'expired'
        ? `allow entry '${nameOf(standing.entry)}' for account ${accountId} expired at ${standing.entry.expiresAt}`
        : standing.why,
    );
  }
  const max = policy.maxEndpointsPerAccount;
  if (max !== undefined && context.admittedEndpointsOfAccount >= max) {
    return unmatched(
      policy,
      `account ${accountId} already has ${context.admittedEndpointsOfAccount} endpoint(s) admitted, the most allowed is ${max}`,
    );
  }
  return { outcome: 'accept', rule: `allow:${nameOf(standing.entry)}`, reason: standing.why };
}

function unmatched(policy: Policy, why: string): Omit<Evaluation, 'act'> {
  return {
    outcome: policy.onUnmatched === 'reject' ? 'reject' : 'hold',
    rule: `onUnmatched:${policy.onUnmatched}`,
    reason: `${why}; unmatched requests ${policy.onUnmatched === 'reject' ? 'are rejected' : 'wait for an approver'}`,
  };
}

function isExpired(entry: AllowEntry, now: Date): boolean {
  return entry.expiresAt !== undefined && Date.parse(entry.expiresAt) <= now.getTime();
}
