import { claimIsLive, isAdmitted, type ConnectionRecord } from '../../lib/domain/connection';
import { revocationFor } from '../../lib/domain/enforcement';
import { durationMs } from '../../lib/domain/duration';
import type { Membership, OrganizationNode } from '../../lib/domain/organization';
import type { OutboundEvent, PublishedEvent } from '../../lib/domain/outbound-event';
import { DEFAULT_POLICY_ID, evaluatePolicy, usesOrganization, type Policy } from '../../lib/domain/policy';
import { ORGANIZATION_ID, ROOT_ID, type Ec2Action, type OrganizationState, type Run, type World } from './world';

/**
 * The invariants of issue 18, checked as the world changes (every EC2 action
 * and every event published) and at the end of a run:
 *
 * 1. Never accepted on doubt: a policy's accept rests on a policy in force
 *    during the run and on the account's true place in the organization at
 *    some moment the run (or the cache it used) could have read; else an
 *    approver accepted it.
 * 2. Never revoked on doubt: a policy's revocation rests on the policy and on
 *    the account's true place during the run itself (it must have been read
 *    one by one); a policy's reject of a request, on the policy and facts as
 *    for an accept; else an approver decided it.
 * 3. Exactly once: at most one successful Accept and one successful Reject per
 *    connection, and one accepted and one rejected event (by eventId).
 * 4. Quiescence: with faults stopped, after one reconcile run every record
 *    equals EC2's state, no claim is left, nothing waits in an outbox, and
 *    every request the policy decides is decided.
 * 5. Plan = apply (checked by the simulation's plan phase, see simulation.ts).
 * 6. Events are ordered: a connection's events have distinct, increasing
 *    sequences (an event published twice keeps its own, and none goes beyond
 *    what its record counted), and none is lost: every event a record held is
 *    published.
 */
export class Invariants {
  readonly violations: string[] = [];
  /** Approver decisions asked for: `${endpointId} ${outcome} ${actor}`. */
  readonly approved = new Set<string>();
  private readonly successes = new Map<string, { accept: number; reject: number }>();
  private readonly events = new Map<string, Map<string, OutboundEvent>>();

  constructor(private readonly world: World) {
    world.observer = { acted: (action) => this.acted(action), published: (event) => this.published(event) };
  }

  private violation(text: string): void {
    this.violations.push(text);
  }

  private acted(action: Ec2Action): void {
    const { endpointId, run } = action;
    const count = this.successes.get(endpointId) ?? { accept: 0, reject: 0 };
    count[action.action]++;
    this.successes.set(endpointId, count);
    if (count[action.action] > 1) this.violation(`3: ${endpointId} ${action.action}ed successfully ${count[action.action]} times`);
    const claimed = action.claim;
    if (!claimed) {
      this.violation(`1/2: ${run.id} ${action.action}ed ${endpointId} without a claim of its own`);
      return;
    }
    const { claim, record } = claimed;
    if (claim.outcome !== action.action) this.violation(`1/2: ${endpointId} ${action.action}ed under a claim to ${claim.outcome}`);
    if (claim.decidedBy !== 'policy') {
      if (!this.approved.has(`${endpointId} ${claim.outcome} ${claim.decidedBy}`)) this.violation(`1/2: ${endpointId} ${claim.outcome}ed for ${claim.decidedBy}, who never asked`);
      return;
    }
    const why = this.justification(run, record, claim.rule, claim.outcome);
    if (why) this.violation(`${claim.outcome === 'accept' ? 1 : 2}: ${endpointId} (account ${record.ownerAccountId}) ${claim.outcome}ed by ${claim.rule} on doubt: ${why}`);
  }

  /** Undefined when some policy in force during the run, on facts true at a moment it could have read, decides this; else why not. */
  private justification(run: Run, record: ConnectionRecord, rule: string, outcome: 'accept' | 'reject'): string | undefined {
    const world = this.world;
    const connection = world.connections.get(record.endpointId);
    if (!connection) return 'EC2 does not know the connection';
    const policies = [...world.policyStatesSince(connection.serviceId, run.startedSeq), ...world.policyStatesSince(DEFAULT_POLICY_ID, run.startedSeq)].filter(
      (policy): policy is Policy => policy !== undefined,
    );
    const now = new Date(world.now);
    const account = record.ownerAccountId;
    if (rule === 'pendingTimeout:reject') {
      const due = policies.some(
        (p) => p.mode === 'auto' && p.onPendingTimeout === 'reject' && p.pendingTimeout && Date.parse(record.createdAt) + durationMs(p.pendingTimeout) <= world.now,
      );
      return due ? undefined : 'no policy in force had the request time out';
    }
    if (rule.startsWith('enforce:')) {
      // A revocation on organization facts rests on what this run read of the account on its own (a walk can miss a move).
      const read = world.accountReads.filter((r) => r.accountId === account && r.direct && r.run === run).map((r) => world.organizationAt(r.seq));
      const ok = policies.some((policy) =>
        this.decidedOn(policy, account, read, (membership) => revocationFor(policy, record, account, now, membership)?.rule === rule),
      );
      return ok ? undefined : `no policy in force revokes it on what the run read of the account on its own (${describeStates(read, account)})`;
    }
    // A verdict rests on what was read of the account (by this run, or earlier into the cache).
    const read = world.accountReads.filter((r) => r.accountId === account).map((r) => world.organizationAt(r.seq));
    const ok = policies.some((policy) =>
      this.decidedOn(policy, account, read, (membership) =>
        // The account's places under maxEndpointsPerAccount: none taken, or all of them.
        [0, policy.maxEndpointsPerAccount ?? 0].some((admitted) => {
          const evaluation = evaluatePolicy(policy, { accountId: account, region: connection.region }, { now, admittedEndpointsOfAccount: admitted, membership });
          return evaluation.act && evaluation.outcome === outcome && evaluation.rule === rule;
        }),
      ),
    );
    return ok ? undefined : `no policy in force decides ${outcome} by ${rule} on what was read of the account (${describeStates(read, account)})`;
  }

  /**
   * Whether `decides` holds on facts the engine may use: for a policy without
   * entries by OU or organization, any (the account's place does not matter);
   * otherwise the account's true place when it was read, or every place it
   * could have (what needs no membership, such as a deny by account id). Never
   * through an unreadable membership: that is what the engine under test judges.
   */
  private decidedOn(policy: Policy, account: string, read: OrganizationState[], decides: (membership: Membership) => boolean): boolean {
    const world = this.world;
    if (!usesOrganization(policy)) return decides(truth(world.organizationAt(world.seq), account, world.now));
    if (read.some((state) => decides(truth(state, account, world.now)))) return true;
    return everyPlace(world, account).every(decides);
  }

  private published(event: PublishedEvent): void {
    if (!('sequence' in event)) return;
    const connectionEvent: OutboundEvent = event;
    const ofConnection = this.events.get(connectionEvent.endpointId) ?? new Map<string, OutboundEvent>();
    this.events.set(connectionEvent.endpointId, ofConnection);
    const earlier = ofConnection.get(connectionEvent.eventId);
    if (earlier) {
      if (earlier.sequence !== connectionEvent.sequence) this.violation(`6: event ${connectionEvent.eventId} published with sequences ${earlier.sequence} and ${connectionEvent.sequence}`);
      return;
    }
    for (const other of ofConnection.values()) {
      if (other.sequence === connectionEvent.sequence) this.violation(`6: ${connectionEvent.endpointId} has two events with sequence ${other.sequence}`);
    }
    ofConnection.set(connectionEvent.eventId, connectionEvent);
    for (const type of ['accepted', 'rejected'] as const) {
      const ids = [...ofConnection.values()].filter((e) => e.eventType === type);
      if (ids.length > 1) this.violation(`3: ${connectionEvent.endpointId} announced ${type} ${ids.length} times under different ids`);
    }
  }

  /** 4 and 6 once the world is quiet: one reconcile run done, faults stopped, leases run out. */
  quiescent(): void {
    const world = this.world;
    const now = new Date(world.now);
    for (const connection of world.connections.values()) {
      if (!world.services.has(connection.serviceId)) continue;
      const record = world.records.get(connection.endpointId);
      if (!record) {
        this.violation(`4: ${connection.endpointId} (${connection.state}) has no record`);
        continue;
      }
      if (record.state !== connection.state) this.violation(`4: ${connection.endpointId} is ${connection.state} in EC2 but ${record.state} in its record`);
      if (claimIsLive(record.claim, now)) this.violation(`4: ${connection.endpointId} is still claimed`);
      if (record.outbox?.length) this.violation(`6: ${connection.endpointId} still holds ${record.outbox.length} event(s) in its outbox`);
      const published = this.events.get(connection.endpointId) ?? new Map<string, OutboundEvent>();
      for (const [eventId, recorded] of world.recordedEvents) {
        if (recorded.endpointId === connection.endpointId && !published.has(eventId)) this.violation(`6: ${connection.endpointId} recorded event ${eventId} (sequence ${recorded.sequence}) and never published it`);
      }
      const highest = Math.max(0, ...[...published.values()].map((e) => e.sequence));
      if (highest > (record.lastSequence ?? 0)) this.violation(`6: ${connection.endpointId} published sequence ${highest}, beyond its record's ${record.lastSequence ?? 0}`);
      if (connection.state === 'pendingAcceptance') {
        const policy = world.policies.get(connection.serviceId)?.at(-1)?.policy ?? world.policies.get(DEFAULT_POLICY_ID)?.at(-1)?.policy;
        const admitted = [...world.connections.values()].filter(
          (c) => c.serviceId === connection.serviceId && c.ownerAccountId === connection.ownerAccountId && isAdmitted(c.state),
        ).length;
        const state = world.organizationHistory.at(-1) as OrganizationState;
        const evaluation = evaluatePolicy(policy, { accountId: connection.ownerAccountId, region: connection.region }, {
          now,
          admittedEndpointsOfAccount: admitted,
          membership: truth(state, connection.ownerAccountId, world.now),
        });
        if (evaluation.act && evaluation.outcome !== 'hold') this.violation(`4: ${connection.endpointId} still waits, though the policy ${evaluation.outcome}s it (${evaluation.rule})`);
      }
    }
  }
}

/** Every place an account could be: outside the organization, or in the root or any OU, active or not. */
function everyPlace(world: World, accountId: string): Membership[] {
  const parents = [ROOT_ID, ...world.units.keys()];
  const statuses = ['ACTIVE', 'SUSPENDED'] as const;
  const places = parents.flatMap((parentId) =>
    statuses.map((status) => {
      const state: OrganizationState = { seq: 0, at: 0, units: world.units, accounts: new Map([[accountId, { parentId, status }]]) };
      return truth(state, accountId, world.now);
    }),
  );
  return [{ kind: 'outside', accountId, organizationId: ORGANIZATION_ID, readAt: new Date(world.now).toISOString() }, ...places];
}

/** Where an account truly was in one state of the organization. */
export function truth(state: OrganizationState, accountId: string, now: number): Membership {
  const readAt = new Date(now).toISOString();
  const account = state.accounts.get(accountId);
  if (!account) return { kind: 'outside', accountId, organizationId: ORGANIZATION_ID, readAt };
  const path: OrganizationNode[] = [];
  for (let id = account.parentId; id !== ROOT_ID; ) {
    const unit = state.units.get(id);
    if (!unit) break;
    path.unshift({ id, name: unit.name });
    id = unit.parentId;
  }
  path.unshift({ id: ROOT_ID, name: 'Root' });
  return { kind: 'member', accountId, organizationId: ORGANIZATION_ID, status: account.status, path, readAt };
}

function describeStates(states: OrganizationState[], accountId: string): string {
  if (!states.length) return 'never read';
  return states
    .map((state) => {
      const account = state.accounts.get(accountId);
      return account ? `${account.parentId}/${account.status}` : 'outside';
    })
    .join(', ');
}
