import { randomBytes } from 'node:crypto';
import { ConflictError, NotFoundError, ValidationError } from '../../lib/errors';
import type { AccountStatus } from '../../lib/domain/organization';
import { ORGANIZATION_ID } from '../../lib/domain/ids';

/** The local organization's management account: the account that owns the endpoint services. */
export const MANAGEMENT_ACCOUNT_ID = '000000000000';

export interface SimulatedUnit {
  id: string;
  name: string;
  parentId: string;
}

export interface SimulatedAccount {
  id: string;
  parentId: string;
  status: AccountStatus;
  joinedAt: Date;
}

/**
 * An AWS Organization: one root, organizational units below it, and accounts in
 * the root or in an OU. The control routes shape it; local/aws/organizations-api.ts
 * answers the Organizations API about it.
 */
export class OrganizationSimulator {
  private organization: { id: string; rootId: string } | undefined;
  private readonly units = new Map<string, SimulatedUnit>();
  private readonly accounts = new Map<string, SimulatedAccount>();

  /** Creates the organization (one per stack); the id is generated unless given. */
  create(organizationId?: string): { organizationId: string; rootId: string } {
    if (this.organization) throw new ConflictError(`organization ${this.organization.id} already exists`);
    if (organizationId !== undefined && !ORGANIZATION_ID.test(organizationId)) {
      throw new ValidationError(`organizationId '${organizationId}' is not an organization id such as o-a1b2c3d4e5`);
    }
    const id = organizationId ?? `o-${randomId(10)}`;
    this.organization = { id, rootId: `r-${randomId(4)}` };
    return { organizationId: id, rootId: this.organization.rootId };
  }

  /** The organization, or undefined when there is none (AWSOrganizationsNotInUseException). */
  current(): { id: string; rootId: string } | undefined {
    return this.organization && { ...this.organization };
  }

  /** Creates an OU below the root or another OU; names are unique among siblings, as in AWS. */
  createUnit(parentId: string, name: string): SimulatedUnit {
    this.requireParent(parentId);
    if ([...this.units.values()].some((unit) => unit.parentId === parentId && unit.name === name)) {
      throw new ConflictError(`an organizational unit named '${name}' already exists in ${parentId}`);
    }
    const organizationId = this.requireOrganization().id;
    const unit = { id: `ou-${organizationId.slice(2, 6)}-${randomId(8)}`, name, parentId };
    this.units.set(unit.id, unit);
    return { ...unit };
  }

  /** Adds an account (invited or created) below a parent. */
  addAccount(accountId: string, parentId: string, status: AccountStatus = 'ACTIVE'): SimulatedAccount {
    this.requireParent(parentId);
    if (this.accounts.has(accountId)) throw new ConflictError(`account ${accountId} is already in the organization`);
    const account = { id: accountId, parentId, status, joinedAt: new Date() };
    this.accounts.set(accountId, account);
    return { ...account };
  }

  moveAccount(accountId: string, parentId: string): SimulatedAccount {
    const account = this.requireAccount(accountId);
    this.requireParent(parentId);
    account.parentId = parentId;
    return { ...account };
  }

  setStatus(accountId: string, status: AccountStatus): SimulatedAccount {
    const account = this.requireAccount(accountId);
    account.status = status;
    return { ...account };
  }

  /** The account leaves the organization. */
  removeAccount(accountId: string): void {
    this.requireAccount(accountId);
    this.accounts.delete(accountId);
  }

  findAccount(accountId: string): SimulatedAccount | undefined {
    const account = this.accounts.get(accountId);
    return account && { ...account };
  }

  findUnit(unitId: string): SimulatedUnit | undefined {
    const unit = this.units.get(unitId);
    return unit && { ...unit };
  }

  /** Whether an id is the root or an OU of the organization. */
  isParent(id: string): boolean {
    return this.organization?.rootId === id || this.units.has(id);
  }

  /** The parent of an account or OU, or undefined for an unknown child. */
  parentOf(childId: string): string | undefined {
    return this.accounts.get(childId)?.parentId ?? this.units.get(childId)?.parentId;
  }

  unitsIn(parentId: string): SimulatedUnit[] {
    return [...this.units.values()].filter((unit) => unit.parentId === parentId).map((unit) => ({ ...unit }));
  }

  /** Every account of the organization, flat (ListAccounts). */
  allAccounts(): SimulatedAccount[] {
    return [...this.accounts.values()].map((account) => ({ ...account }));
  }

  accountsIn(parentId: string): SimulatedAccount[] {
    return [...this.accounts.values()].filter((account) => account.parentId === parentId).map((account) => ({ ...account }));
  }

  reset(): void {
    this.organization = undefined;
    this.units.clear();
    this.accounts.clear();
  }

  private requireOrganization(): { id: string; rootId: string } {
    if (!this.organization) throw new NotFoundError('there is no organization: POST /local/organization first');
    return this.organization;
  }

  private requireParent(parentId: string): void {
    this.requireOrganization();
    if (!this.isParent(parentId)) throw new NotFoundError(`parent ${parentId} is neither the root nor an organizational unit`);
  }

  private requireAccount(accountId: string): SimulatedAccount {
    const account = this.accounts.get(accountId);
    if (!account) throw new NotFoundError(`account ${accountId} is not in the organization`);
    return account;
  }
}

function randomId(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((byte) => alphabet[byte % alphabet.length]).join('');
}
