import { ROOT_ID } from '../domain/ids';
import {
  membershipIn,
  verifiedStructure,
  type AccountStatus,
  type Membership,
  type OrganizationNode,
  type OrganizationWalk,
} from '../domain/organization';
import { describeError } from '../errors';
import { logger } from '../logger';
import type { Clock, KnownMembership, MembershipCache, MembershipReading, OrganizationMemberships, OrganizationsApi } from './ports';

/**
 * How the engine learns where accounts sit in the organization. Membership is
 * never concluded from absence: an account a listing lacks is read on its own
 * (DescribeAccount, then ListParents up to the root), and only Organizations
 * answering AccountNotFoundException puts it outside. Any other failure makes
 * it unreadable: nothing is accepted or revoked on it.
 */

/** Unit paths read, shared by reads of accounts in the same OU. */
type UnitCache = Map<string, Promise<OrganizationNode & { parentId: string }>>;

/** Organizations nests OUs at most five deep; more means the answers loop. */
const MAX_DEPTH = 5;

/**
 * Reads memberships through Organizations' API, caching what it read (in its
 * memory, and in the table for the other functions) for `ttlSeconds`.
 * Organizations allows few requests a second: a burst of notifications must
 * not become a burst of calls. One per container.
 */
export class OrganizationReader implements OrganizationMemberships {
  private readonly remembered = new Map<string, KnownMembership>();
  private readonly reading = new Map<string, Promise<Membership>>();
  private units: UnitCache = new Map();
  private unitsReadAt = 0;
  private organizationId: Promise<string> | undefined;

  constructor(
    private readonly api: OrganizationsApi,
    private readonly cache: MembershipCache,
    private readonly options: { ttlSeconds: number; clock: Clock },
  ) {}

  /**
   * For deciding requests between reconcile runs: each account from this
   * container's memory, else the table's cache, else read on its own. Once one
   * read fails, the others of the call are not attempted (they would fail the
   * same way, at Organizations' expense) and are unreadable too.
   */
  async cached(accountIds: readonly string[]): Promise<MembershipReading> {
    const memberships = new Map<string, Membership>();
    const wanted = [...new Set(accountIds)];
    const missing = wanted.filter((accountId) => {
      const known = this.remembered.get(accountId);
      if (known && this.fresh(known)) memberships.set(accountId, known);
      return !memberships.has(accountId);
    });
    if (!missing.length) return { memberships, confirmed: new Set() };
    let cached = new Map<string, KnownMembership>();
    try {
      cached = await this.cache.get(missing);
    } catch (error) {
      logger.warn('could not read cached memberships; reading the accounts from Organizations', { error });
    }
    const unread: string[] = [];
    for (const accountId of missing) {
      const membership = cached.get(accountId);
      if (membership && this.fresh(membership)) {
        this.remembered.set(accountId, membership);
        memberships.set(accountId, membership);
      } else unread.push(accountId);
    }
    const read = await this.readEach(unread);
    for (const [accountId, membership] of read.memberships) memberships.set(accountId, membership);
    return { memberships, confirmed: read.confirmed };
  }

  /**
   * For a reconcile run: the organization walked fresh (ListRoots, then each
   * parent's OUs and accounts), checked against the flat ListAccounts. An
   * account the two agree on is taken from the walk; every other one this run
   * needs (`accountIds`), and every account the two disagree on, is read on its
   * own. The verified memberships are cached for the notifications until the
   * next run.
   */
  async walked(accountIds: readonly string[]): Promise<MembershipReading> {
    let walk: OrganizationWalk;
    let listed: Map<string, AccountStatus>;
    try {
      walk = await this.walk();
      listed = new Map((await this.api.listAccounts()).map(({ id, status }) => [id, status]));
    } catch (error) {
      const name = describeError(error).code;
      logger.warn('could not read the organization; nothing is decided or revoked on it this run', { error });
      return { memberships: new Map(accountIds.map((accountId) => [accountId, { kind: 'unreadable', accountId, error: name }])), confirmed: new Set(), error: name };
    }
    const { structure, unverified } = verifiedStructure(walk, listed);
    this.units = new Map([...structure.units].map(([id, unit]) => [id, Promise.resolve({ ...unit })]));
    this.unitsReadAt = Date.parse(structure.readAt);
    const verified: KnownMembership[] = [];
    const memberships = new Map<string, Membership>();
    for (const accountId of structure.accounts.keys()) {
      const membership = membershipIn(structure, accountId);
      if (membership) verified.push(membership);
      else unverified.add(accountId);
    }
    for (const membership of verified) {
      this.remembered.set(membership.accountId, membership);
      memberships.set(membership.accountId, membership);
    }
    const toRead = new Set(unverified);
    for (const accountId of accountIds) if (!memberships.has(accountId)) toRead.add(accountId);
    try {
      await this.cache.put(verified);
    } catch (error) {
      logger.warn('could not cache the memberships of the walk', { error });
    }
    const read = await this.readEach([...toRead]);
    for (const [accountId, membership] of read.memberships) {
      memberships.set(accountId, membership);
      const parent = membership.kind === 'member' ? membership.path.at(-1) : undefined;
      if (membership.kind === 'member' && parent) structure.accounts.set(accountId, { status: membership.status, parentId: parent.id });
      else structure.accounts.delete(accountId);
    }
    if (read.failed) {
      // An account the run could not place keeps the structure from being the whole organization.
      return { memberships, confirmed: read.confirmed, error: read.failed };
    }
    return { memberships, confirmed: read.confirmed, structure };
  }

  /** Reads accounts on their own, now (before a revocation that rests on them). */
  async direct(accountIds: readonly string[]): Promise<MembershipReading> {
    const read = await this.readEach([...new Set(accountIds)]);
    return { memberships: read.memberships, confirmed: read.confirmed };
  }

  /** Forgets what this container remembers of the organization (the local stack's reset). */
  forget(): void {
    this.remembered.clear();
    this.units = new Map();
    this.unitsReadAt = 0;
    this.organizationId = undefined;
  }

  /** Reads accounts one by one; after the first failure the rest are unreadable with the same error. */
  private async readEach(accountIds: readonly string[]): Promise<{ memberships: Map<string, Membership>; confirmed: Set<string>; failed?: string }> {
    const memberships = new Map<string, Membership>();
    const confirmed = new Set<string>();
    const read: KnownMembership[] = [];
    let failed: string | undefined;
    for (const accountId of accountIds) {
      const membership: Membership = failed ? { kind: 'unreadable', accountId, error: failed } : await this.readOnce(accountId);
      memberships.set(accountId, membership);
      if (membership.kind === 'unreadable') failed ??= membership.error;
      else {
        confirmed.add(accountId);
        read.push(membership);
      }
    }
    if (read.length) {
      try {
        await this.cache.put(read);
      } catch (error) {
        logger.warn('could not cache memberships', { error });
      }
    }
    return { memberships, confirmed, ...(failed ? { failed } : {}) };
  }

  /** One account read on its own; copies of the same read made at the same time share it. */
  private readOnce(accountId: string): Promise<Membership> {
    let pending = this.reading.get(accountId);
    if (!pending) {
      pending = this.readAccount(accountId)
        .then((membership: KnownMembership): Membership => {
          this.remembered.set(accountId, membership);
          return membership;
        })
        .catch((error: unknown): Membership => {
          logger.warn('could not read an account from Organizations', { accountId, error });
          return { kind: 'unreadable', accountId, error: describeError(error).code };
        })
        .finally(() => this.reading.delete(accountId));
      this.reading.set(accountId, pending);
    }
    return pending;
  }

  /** DescribeAccount, then ListParents up to the root, describing each OU on the way (unless another read did). */
  private async readAccount(accountId: string): Promise<KnownMembership> {
    const organizationId = await this.readOrganizationId();
    const account = await this.api.describeAccount(accountId);
    const readAt = () => this.options.clock.now().toISOString();
    if (!account) return { kind: 'outside', accountId, organizationId, readAt: readAt() };
    if (this.options.clock.now().getTime() - this.unitsReadAt > this.options.ttlSeconds * 1000) {
      this.units = new Map();
      this.unitsReadAt = this.options.clock.now().getTime();
    }
    const path: OrganizationNode[] = [];
    let parentId = await this.api.parentOf(accountId);
    for (let depth = 0; !ROOT_ID.test(parentId); depth++) {
      if (depth > MAX_DEPTH) throw new Error(`the OU path of ${accountId} is deeper than Organizations allows`);
      const unit = await this.describeUnit(parentId);
      path.unshift({ id: unit.id, name: unit.name });
      parentId = unit.parentId;
    }
    path.unshift({ id: parentId, name: 'Root' });
    return { kind: 'member', accountId, organizationId, status: account.status, path, readAt: readAt() };
  }

  private describeUnit(unitId: string): Promise<OrganizationNode & { parentId: string }> {
    let unit = this.units.get(unitId);
    if (!unit) {
      unit = (async () => ({ ...(await this.api.describeUnit(unitId)), parentId: await this.api.parentOf(unitId) }))();
      const units = this.units;
      units.set(unitId, unit);
      unit.catch(() => units.delete(unitId));
    }
    return unit;
  }

  /** The organization's id (DescribeOrganization), read once: it never changes. */
  private readOrganizationId(): Promise<string> {
    this.organizationId ??= this.api.describeOrganization().then(
      ({ id }) => id,
      (error: unknown) => {
        this.organizationId = undefined;
        throw error;
      },
    );
    return this.organizationId;
  }

  /** The root, then for each parent its OUs and its accounts. */
  private async walk(): Promise<OrganizationWalk> {
    const organizationId = await this.readOrganizationId();
    const readAt = this.options.clock.now().toISOString();
    const [root] = await this.api.listRoots();
    if (!root) throw new Error('ListRoots returned no root');
    const walk: OrganizationWalk = { organizationId, root, units: new Map(), accounts: new Map(), readAt };
    const parents = [root.id];
    for (let parentId = parents.shift(); parentId !== undefined; parentId = parents.shift()) {
      for (const unit of await this.api.listUnits(parentId)) {
        walk.units.set(unit.id, { ...unit, parentId });
        parents.push(unit.id);
      }
      for (const account of await this.api.listAccountsIn(parentId)) {
        const sightings = walk.accounts.get(account.id) ?? [];
        sightings.push({ status: account.status, parentId });
        walk.accounts.set(account.id, sightings);
      }
    }
    return walk;
  }

  private fresh(membership: KnownMembership): boolean {
    return this.options.clock.now().getTime() - Date.parse(membership.readAt) < this.options.ttlSeconds * 1000;
  }
}
