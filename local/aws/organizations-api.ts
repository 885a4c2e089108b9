import type { CallLog } from './call-log';
import type { Faults } from './faults';
import { requestId as newRequestId } from './ids';
import { ACCOUNT_ID } from '../../lib/domain/ids';
import { MANAGEMENT_ACCOUNT_ID, type OrganizationSimulator, type SimulatedAccount, type SimulatedUnit } from './organizations-simulator';
import type { LocalSts } from './sts-api';

/** The X-Amz-Target prefix of every Organizations operation (AWS JSON 1.1). */
export const ORGANIZATIONS_TARGET_PREFIX = 'AWSOrganizationsV20161128.';
const PARTITION_ARN = 'arn:aws:organizations::';
/** Organizations' page size limit (MaxResults 1..20), also the size of a page when none is asked for. */
const MAX_RESULTS = 20;

/**
 * Organizations' request rate is low and per account: a burst of this many,
 * then this many per second. Beyond it: TooManyRequestsException.
 */
export const ORGANIZATIONS_RATE = { burst: 20, perSecond: 5 };

export interface OrganizationsApiDeps {
  organization: OrganizationSimulator;
  faults: Faults;
  calls: CallLog;
  sts: LocalSts;
}

export interface JsonAnswer {
  status: number;
  body: string;
  requestId: string;
}

/** An error Organizations answers with: `__type` is the exception's name. */
class OrganizationsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly extra: Record<string, string> = {},
    readonly status = 400,
  ) {
    super(message);
  }
}

type Input = Record<string, unknown>;
type Operation = (input: Input, organization: OrganizationSimulator) => unknown;

const OPERATIONS = new Map<string, Operation>([
  ['DescribeOrganization', (_, org) => ({ Organization: organizationView(requireOrganization(org)) })],
  ['ListRoots', (input, org) => paged(input, [rootView(requireOrganization(org))], 'Roots')],
  ['DescribeAccount', describeAccount],
  ['DescribeOrganizationalUnit', describeUnit],
  ['ListParents', listParents],
  ['ListChildren', listChildren],
  ['ListAccounts', (input, org) => paged(input, org.allAccounts().map((a) => accountView(a, org)), 'Accounts')],
  ['ListAccountsForParent', (input, org) => paged(input, org.accountsIn(requireParentId(input, org)).map((a) => accountView(a, org)), 'Accounts')],
  [
    'ListOrganizationalUnitsForParent',
    (input, org) => paged(input, org.unitsIn(requireParentId(input, org)).map((u) => unitView(u, org)), 'OrganizationalUnits'),
  ],
]);

/**
 * Answers one Organizations request in the AWS JSON 1.1 protocol: the operation
 * in X-Amz-Target, JSON in and out, errors as `{"__type", "Message"}` with status
 * 400. Calls signed with temporary credentials must carry ones the local STS
 * issued and that have not expired.
 */
export class LocalOrganizationsApi {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly deps: OrganizationsApiDeps) {}

  answer(target: string | undefined, body: string, authorization: string | undefined): JsonAnswer {
    const requestId = newRequestId();
    const operation = target?.startsWith(ORGANIZATIONS_TARGET_PREFIX) ? target.slice(ORGANIZATIONS_TARGET_PREFIX.length) : '';
    const markFailed = this.deps.calls.received(operation || '(none)', []);
    try {
      const run = OPERATIONS.get(operation);
      if (!run) throw new OrganizationsError('UnknownOperationException', `The operation ${operation || target || '(none)'} is not supported`);
      const caller = this.callerAccount(authorization);
      if (!this.bucketOf(caller).take()) {
        throw new OrganizationsError('TooManyRequestsException', 'AWS Organizations can\'t complete your request because it received too many requests. Try again later.', {
          Type: 'ExceededRequestRate',
        });
      }
      if (this.deps.faults.organizationsUnavailable()) {
        throw new OrganizationsError('AccessDeniedException', "You don't have permissions to access this resource.");
      }
      const input = parseInput(body);
      return { status: 200, body: JSON.stringify(run(input, this.deps.organization)), requestId };
    } catch (error) {
      markFailed();
      if (!(error instanceof OrganizationsError)) throw error;
      return { status: error.status, body: JSON.stringify({ __type: error.type, Message: error.message, ...error.extra }), requestId };
    }
  }

  reset(): void {
    this.buckets.clear();
  }

  /** The account a request comes from: the local STS's session, or the management account for long-term keys. */
  private callerAccount(authorization: string | undefined): string {
    const accessKeyId = /Credential=([^/]+)\//.exec(authorization ?? '')?.[1];
    if (!accessKeyId) throw new OrganizationsError('MissingAuthenticationTokenException', 'Missing Authentication Token', {}, 403);
    if (!accessKeyId.startsWith('ASIA')) return MANAGEMENT_ACCOUNT_ID;
    const session = this.deps.sts.session(accessKeyId);
    if (!session) throw new OrganizationsError('UnrecognizedClientException', 'The security token included in the request is invalid.', {}, 403);
    if (session.expiresAt.getTime() <= Date.now()) {
      throw new OrganizationsError('ExpiredTokenException', 'The security token included in the request is expired', {}, 403);
    }
    return session.accountId;
  }

  private bucketOf(account: string): TokenBucket {
    let bucket = this.buckets.get(account);
    if (!bucket) {
      bucket = new TokenBucket(ORGANIZATIONS_RATE.burst, ORGANIZATIONS_RATE.perSecond);
      this.buckets.set(account, bucket);
    }
    return bucket;
  }
}

function parseInput(body: string): Input {
  if (body.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Input;
  } catch {
    // answered below
  }
  throw new OrganizationsError('SerializationException', 'Start of structure or map found where not expected.');
}

function requireOrganization(org: OrganizationSimulator): { id: string; rootId: string } {
  const current = org.current();
  if (!current) throw new OrganizationsError('AWSOrganizationsNotInUseException', 'Your account is not a member of an organization.');
  return current;
}

function stringField(input: Input, name: string, pattern: RegExp): string {
  const value = input[name];
  if (typeof value !== 'string') {
    throw new OrganizationsError('InvalidInputException', `You provided a value that does not match the required pattern: ${name} is missing.`, {
      Reason: 'INVALID_INPUT',
    });
  }
  if (!pattern.test(value)) {
    throw new OrganizationsError('InvalidInputException', `You specified an invalid value for ${name}.`, { Reason: 'INVALID_PATTERN' });
  }
  return value;
}

const PARENT_ID = /^(r-[0-9a-z]{4,32})|(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/;
const CHILD_ID = /^(\d{12})|(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/;
const UNIT_ID = /^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/;

function describeAccount(input: Input, org: OrganizationSimulator): unknown {
  requireOrganization(org);
  const accountId = stringField(input, 'AccountId', ACCOUNT_ID);
  const account = org.findAccount(accountId);
  if (!account) {
    throw new OrganizationsError('AccountNotFoundException', "You specified an account that doesn't exist.");
  }
  return { Account: accountView(account, org) };
}

function describeUnit(input: Input, org: OrganizationSimulator): unknown {
  requireOrganization(org);
  const unit = org.findUnit(stringField(input, 'OrganizationalUnitId', UNIT_ID));
  if (!unit) throw new OrganizationsError('OrganizationalUnitNotFoundException', "You specified an OU that doesn't exist.");
  return { OrganizationalUnit: unitView(unit, org) };
}

function listParents(input: Input, org: OrganizationSimulator): unknown {
  const { rootId } = requireOrganization(org);
  const childId = stringField(input, 'ChildId', CHILD_ID);
  const parentId = org.parentOf(childId);
  if (!parentId) throw new OrganizationsError('ChildNotFoundException', "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.");
  return paged(input, [{ Id: parentId, Type: parentId === rootId ? 'ROOT' : 'ORGANIZATIONAL_UNIT' }], 'Parents');
}

function listChildren(input: Input, org: OrganizationSimulator): unknown {
  const parentId = requireParentId(input, org);
  const childType = input.ChildType;
  if (childType === 'ACCOUNT') return paged(input, org.accountsIn(parentId).map((a) => ({ Id: a.id, Type: 'ACCOUNT' })), 'Children');
  if (childType === 'ORGANIZATIONAL_UNIT') {
    return paged(input, org.unitsIn(parentId).map((u) => ({ Id: u.id, Type: 'ORGANIZATIONAL_UNIT' })), 'Children');
  }
  throw new OrganizationsError('InvalidInputException', 'You specified an invalid value for ChildType.', { Reason: 'INVALID_ENUM' });
}

function requireParentId(input: Input, org: OrganizationSimulator): string {
  requireOrganization(org);
  const parentId = stringField(input, 'ParentId', PARENT_ID);
  if (!org.isParent(parentId)) throw new OrganizationsError('ParentNotFoundException', "We can't find a root or OU with the ParentId that you specified.");
  return parentId;
}

/** One page of a list: MaxResults 1..20, and an opaque NextToken the caller hands back unchanged. */
function paged(input: Input, items: unknown[], field: string): Record<string, unknown> {
  const max = input.MaxResults ?? MAX_RESULTS;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_RESULTS) {
    throw new OrganizationsError('InvalidInputException', `You provided a value that is too large or too small for MaxResults (1-${MAX_RESULTS}).`, {
      Reason: max !== undefined && typeof max === 'number' && max > MAX_RESULTS ? 'MAX_VALUE_EXCEEDED' : 'MIN_VALUE_EXCEEDED',
    });
  }
  const offset = input.NextToken === undefined ? 0 : decodeToken(input.NextToken);
  const end = offset + max;
  return { [field]: items.slice(offset, end), ...(end < items.length ? { NextToken: encodeToken(end) } : {}) };
}

function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64');
}

function decodeToken(token: unknown): number {
  if (typeof token === 'string') {
    try {
      const decoded: unknown = JSON.parse(Buffer.from(token, 'base64').toString('utf8'));
      if (typeof decoded === 'object' && decoded !== null && 'o' in decoded && Number.isInteger(decoded.o) && Number(decoded.o) >= 0) {
        return Number(decoded.o);
      }
    } catch {
      // answered below
    }
  }
  throw new OrganizationsError('InvalidInputException', 'The provided pagination token is invalid.', { Reason: 'INVALID_NEXT_TOKEN' });
}

function organizationView(organization: { id: string }): unknown {
  return {
    Id: organization.id,
    Arn: `${PARTITION_ARN}${MANAGEMENT_ACCOUNT_ID}:organization/${organization.id}`,
    FeatureSet: 'ALL',
    MasterAccountArn: `${PARTITION_ARN}${MANAGEMENT_ACCOUNT_ID}:account/${organization.id}/${MANAGEMENT_ACCOUNT_ID}`,
    MasterAccountId: MANAGEMENT_ACCOUNT_ID,
    MasterAccountEmail: 'management@example.com',
    AvailablePolicyTypes: [],
  };
}

function rootView(organization: { id: string; rootId: string }): unknown {
  return { Id: organization.rootId, Arn: `${PARTITION_ARN}${MANAGEMENT_ACCOUNT_ID}:root/${organization.id}/${organization.rootId}`, Name: 'Root', PolicyTypes: [] };
}

function unitView(unit: SimulatedUnit, org: OrganizationSimulator): unknown {
  const organizationId = org.current()?.id ?? '';
  return { Id: unit.id, Arn: `${PARTITION_ARN}${MANAGEMENT_ACCOUNT_ID}:ou/${organizationId}/${unit.id}`, Name: unit.name };
}

function accountView(account: SimulatedAccount, org: OrganizationSimulator): unknown {
  const organizationId = org.current()?.id ?? '';
  return {
    Id: account.id,
    Arn: `${PARTITION_ARN}${MANAGEMENT_ACCOUNT_ID}:account/${organizationId}/${account.id}`,
    Email: `${account.id}@example.com`,
    Name: `account-${account.id}`,
    Status: account.status,
    State: account.status,
    JoinedMethod: 'INVITED',
    // AWS JSON protocols send timestamps as epoch seconds.
    JoinedTimestamp: account.joinedAt.getTime() / 1000,
  };
}

/** One account's allowance of Organizations requests: starts full, refills continuously. */
class TokenBucket {
  private tokens: number;
  private refilledAt = performance.now();

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
  ) {
    this.tokens = capacity;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
