import fc from 'fast-check';
import type { AccountStatus } from '../../lib/domain/organization';
import { DEFAULT_POLICY_ID, parsePolicy, type Policy } from '../../lib/domain/policy';
import { decideConnection } from '../../lib/approvals';
import { handleNotificationBatch } from '../../lib/notifications';
import { replacePolicy } from '../../lib/policy-admin';
import { planPolicy, type PolicyPlan } from '../../lib/policy-plan';
import { reconcile } from '../../lib/reconciler';
import { ActionFailedError, ConflictError, EC2ThrottledError, NotFoundError, PreconditionFailedError, PreconditionRequiredError } from '../../lib/errors';
import { Invariants } from './invariants';
import { ORGANIZATION_ID, ROOT_ID, World } from './world';

/**
 * The deterministic simulation of issue 18: random commands (notifications
 * duplicated, reordered and lost; reconcile runs; approvers; policy saves;
 * accounts moving, suspended, leaving and joining; Organizations outages; EC2
 * throttling and 5xx per call and per endpoint; crashes between EC2 and the
 * record; the clock moving) run against the engine on the in-memory AWS, their
 * port calls interleaved by fast-check's scheduler. The invariants are checked
 * as it goes (invariants.ts); then a policy plan is checked against saving it
 * and one reconcile run (invariant 5), and the world is let go quiet and
 * checked (invariants 4 and 6).
 */

const S1 = 'vpce-svc-00000000000000001';
const S2 = 'vpce-svc-00000000000000002';
const WORKLOADS = 'ou-root-workload';
const PROD = 'ou-root-prodprod';
const DEV = 'ou-root-devdevde';
const SANDBOX = 'ou-root-sandbox1';
const ACCOUNTS = ['111111111111', '222222222222', '333333333333', '444444444444', '555555555555', '666666666666'] as const;
const PARENTS = [ROOT_ID, WORKLOADS, PROD, DEV, SANDBOX] as const;

/** Allow and deny entries over the simulated organization, each with a label naming what it admits. */
const ALLOW_ENTRIES = [
  { account: ACCOUNTS[0], label: 'acct-1' },
  { account: ACCOUNTS[1], label: 'acct-2' },
  { account: ACCOUNTS[4], label: 'acct-5' },
  { account: '*', label: 'anyone' },
  { organizationalUnit: WORKLOADS, label: 'workloads' },
  { organizationalUnit: PROD, label: 'prod' },
  { organization: ORGANIZATION_ID, label: 'org' },
];
const DENY_ENTRIES = [
  { account: ACCOUNTS[4], label: 'no-5' },
  { account: ACCOUNTS[2], label: 'no-3' },
  { organizationalUnit: SANDBOX, label: 'sandbox' },
  { organizationalUnit: DEV, label: 'dev' },
];

/** A policy document over the simulated organization. */
export const policyArbitrary: fc.Arbitrary<Policy> = fc
  .record({
    mode: fc.constantFrom('auto', 'auto', 'auto', 'manual', 'observe'),
    allow: fc.subarray(ALLOW_ENTRIES, { maxLength: 3 }),
    deny: fc.subarray(DENY_ENTRIES, { maxLength: 2 }),
    onUnmatched: fc.constantFrom('hold', 'reject'),
    enforce: fc.boolean(),
    maxRevocationPercent: fc.constantFrom(100, 100, 50),
    maxEndpointsPerAccount: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
    timeout: fc.option(fc.constantFrom('reject', 'remind'), { nil: undefined }),
  })
  .map(({ timeout, maxEndpointsPerAccount, ...document }) =>
    parsePolicy({
      ...document,
      ...(maxEndpointsPerAccount ? { maxEndpointsPerAccount } : {}),
      ...(timeout ? { pendingTimeout: 'PT10M', onPendingTimeout: timeout } : {}),
    }),
  );

/** What the commands act on: the world, the invariants watching it, and what is in flight. */
export interface Real {
  world: World;
  invariants: Invariants;
  /** Notifications published and not yet delivered, in order. */
  queue: { messageId: string; body: string }[];
  endpoints: string[];
  scheduler: fc.Scheduler;
  nextMessage: number;
}

type Command = fc.AsyncCommand<object, Real>;

/** A run in the background: it fails the simulation only by breaking an invariant or throwing what it must not. */
function background(real: Real, kind: string, body: Parameters<World['start']>[1], expected: (error: unknown) => boolean = () => false): void {
  void real.world.start(kind, body).done.catch((error: unknown) => {
    if (!expected(error)) real.invariants.violations.push(`a ${kind} run threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  });
}

function command(name: string, run: (real: Real) => void | Promise<void>): Command {
  return { check: () => true, run: async (_model, real) => run(real), toString: () => name };
}

const connect = (serviceId: string, endpointId: string) => JSON.stringify({ eventType: 'Connect', serviceId, vpcEndpointId: endpointId, vpcEndpointState: 'pendingAcceptance' });

const commandKinds = {
  create: fc.record({ service: fc.constantFrom(S1, S2), account: fc.constantFrom(...ACCOUNTS) }).map(({ service, account }) =>
    command(`create(${service.slice(-1)}, ${account})`, (real) => {
      const endpointId = `vpce-${String(real.endpoints.length + 1).padStart(17, '0')}`;
      real.world.createEndpoint(service, endpointId, account);
      real.endpoints.push(endpointId);
      real.queue.push({ messageId: `m${++real.nextMessage}`, body: connect(service, endpointId) });
    }),
  ),
  deliver: fc.record({ count: fc.integer({ min: 1, max: 4 }), copies: fc.integer({ min: 1, max: 2 }), reversed: fc.boolean() }).map(({ count, copies, reversed }) =>
    command(`deliver(${count}, copies ${copies}${reversed ? ', reversed' : ''})`, (real) => {
      const taken = real.queue.splice(0, count);
      if (!taken.length) return;
      const batch = Array.from({ length: copies }, () => taken).flat();
      if (reversed) batch.reverse();
      background(real, 'notifications', async (ports) => {
        const { failedMessageIds } = await handleNotificationBatch(batch, ports);
        // What failed comes back to the queue, as SQS hands it back after the visibility timeout.
        for (const message of taken) if (failedMessageIds.includes(message.messageId)) real.queue.push(message);
      });
    }),
  ),
  lose: fc.constant(command('lose a notification', (real) => void real.queue.shift())),
  reconcile: fc.constant(command('reconcile', (real) => background(real, 'reconcile', (ports) => reconcile(ports)))),
  approver: fc.record({ index: fc.nat(20), action: fc.constantFrom('accept', 'reject', 'revoke'), actor: fc.constantFrom('alice', 'bob') }).map(({ index, action, actor }) =>
    command(`approver ${actor} ${action}s #${index}`, (real) => {
      const endpointId = real.endpoints[index % Math.max(1, real.endpoints.length)];
      const connection = endpointId && real.world.connections.get(endpointId);
      if (!connection) return;
      real.invariants.approved.add(`${endpointId} ${action === 'accept' ? 'accept' : 'reject'} ${actor}`);
      background(
        real,
        'approver',
        (ports) => decideConnection({ serviceId: connection.serviceId, endpointId: connection.endpointId, action, reason: 'simulated', actor }, ports),
        (error) => [ConflictError, NotFoundError, ActionFailedError, EC2ThrottledError].some((kind) => error instanceof kind),
      );
    }),
  ),
  save: fc.record({ policyId: fc.constantFrom(DEFAULT_POLICY_ID, S1), policy: policyArbitrary }).map(({ policyId, policy }) =>
    command(`save ${policyId} ${JSON.stringify(policy)}`, (real) => {
      const ifMatch = real.world.policies.get(policyId)?.length ? { any: true as const } : undefined;
      background(
        real,
        'policy save',
        (ports) => replacePolicy(policyId, policy, { actor: 'carol', ...(ifMatch ? { ifMatch } : {}) }, ports),
        // Another save got there first: If-Match no longer matches what this one read.
        (error) => error instanceof PreconditionFailedError || error instanceof PreconditionRequiredError,
      );
    }),
  ),
  move: fc.record({ account: fc.constantFrom(...ACCOUNTS), parent: fc.constantFrom(...PARENTS) }).map(({ account, parent }) =>
    command(`move ${account} to ${parent}`, (real) => {
      if (real.world.accounts.has(account)) real.world.moveAccount(account, parent);
      else real.world.joinOrganization(account, parent);
    }),
  ),
  status: fc.record({ account: fc.constantFrom(...ACCOUNTS), status: fc.constantFrom<AccountStatus>('SUSPENDED', 'ACTIVE') }).map(({ account, status }) =>
    command(`${account} ${status}`, (real) => real.world.setStatus(account, status)),
  ),
  leave: fc.constantFrom(...ACCOUNTS).map((account) => command(`${account} leaves the organization`, (real) => real.world.leaveOrganization(account))),
  outage: fc.constantFrom(true, true, false).map((down) => command(`Organizations ${down ? 'down' : 'up'}`, (real) => void (real.world.faults.organizationsDown = down))),
  ec2Calls: fc.record({ kind: fc.constantFrom('throttle', 'fail'), calls: fc.integer({ min: 1, max: 3 }) }).map(({ kind, calls }) =>
    command(`EC2 ${kind}s the next ${calls} call(s)`, (real) => {
      if (kind === 'throttle') real.world.faults.ec2Throttled += calls;
      else real.world.faults.ec2Failing += calls;
    }),
  ),
  poison: fc.record({ index: fc.nat(20), poison: fc.boolean() }).map(({ index, poison }) =>
    command(`EC2 ${poison ? 'fails every call naming' : 'heals'} #${index}`, (real) => {
      const endpointId = real.endpoints[index % Math.max(1, real.endpoints.length)];
      if (!endpointId) return;
      if (poison) real.world.faults.poisoned.add(endpointId);
      else real.world.faults.poisoned.delete(endpointId);
    }),
  ),
  crash: fc.constant(command('the caller of the next Accept or Reject dies after EC2 acts', (real) => void (real.world.faults.crashAfterNextAct = true))),
  sns: fc.integer({ min: 1, max: 2 }).map((n) => command(`SNS fails the next ${n} publish(es)`, (real) => void (real.world.faults.publishFailing += n))),
  clock: fc.constantFrom(1_000, 30_000, 60_000, 11 * 60_000, 20 * 60_000).map((ms) => command(`the clock moves ${ms / 1000} s`, (real) => real.world.advance(ms))),
  delete: fc.nat(20).map((index) =>
    command(`the consumer deletes #${index}`, (real) => {
      const endpointId = real.endpoints[index % Math.max(1, real.endpoints.length)];
      const connection = endpointId && real.world.connections.get(endpointId);
      if (!connection || connection.state === 'deleted') return;
      real.world.deleteEndpoint(connection.endpointId);
      real.queue.push({ messageId: `m${++real.nextMessage}`, body: JSON.stringify({ eventType: 'Delete', serviceId: connection.serviceId, vpcEndpointId: connection.endpointId }) });
    }),
  ),
};

/** How often each kind of command comes up: what moves decisions (requests, deliveries, runs, accounts moving, outages) most. */
const WEIGHTS: Record<keyof typeof commandKinds, number> = {
  create: 4,
  deliver: 4,
  lose: 1,
  reconcile: 3,
  approver: 2,
  save: 2,
  move: 3,
  status: 1,
  leave: 1,
  outage: 4,
  ec2Calls: 1,
  poison: 1,
  crash: 1,
  sns: 1,
  clock: 2,
  delete: 1,
};
const commands = (Object.keys(WEIGHTS) as (keyof typeof commandKinds)[]).flatMap((kind) => Array.from({ length: WEIGHTS[kind] }, () => commandKinds[kind]));

/**
 * One simulated history: the policies it starts with, the commands, the
 * interleaving, and the candidate a plan is made for. `replayPath` is what
 * fc.commands needs, besides the seed and the path, to replay a shrunk
 * sequence of commands exactly.
 */
export function simulationArbitrary(replayPath?: string) {
  return fc.record({
    defaultPolicy: policyArbitrary,
    ownPolicy: fc.option(policyArbitrary, { nil: undefined }),
    commands: fc.commands(commands, { maxCommands: 40, size: 'medium', ...(replayPath ? { replayPath } : {}) }),
    scheduler: fc.scheduler(),
    candidate: fc.record({ policyId: fc.constantFrom(DEFAULT_POLICY_ID, S1), policy: policyArbitrary }),
  });
}

export type SimulationInput = ReturnType<typeof simulationArbitrary> extends fc.Arbitrary<infer T> ? T : never;

/** Runs one history and answers the invariant violations it found (none: it holds). */
export async function simulate(input: SimulationInput, inspect?: (world: World, stage: string) => void): Promise<string[]> {
  // A fresh copy of the generated scheduler: one that already ran would interleave differently, and a
  // shrunk history must replay exactly as it failed.
  const scheduler = (input.scheduler as fc.Scheduler & { [fc.cloneMethod](): fc.Scheduler })[fc.cloneMethod]();
  const world = new World({ scheduler });
  world.addService(S1);
  world.addService(S2);
  world.addUnit(WORKLOADS, 'Workloads', ROOT_ID);
  world.addUnit(PROD, 'Prod', WORKLOADS);
  world.addUnit(DEV, 'Dev', WORKLOADS);
  world.addUnit(SANDBOX, 'Sandbox', ROOT_ID);
  world.joinOrganization(ACCOUNTS[0], PROD);
  world.joinOrganization(ACCOUNTS[1], DEV);
  world.joinOrganization(ACCOUNTS[2], SANDBOX);
  world.joinOrganization(ACCOUNTS[3], ROOT_ID);
  world.storePolicy(DEFAULT_POLICY_ID, input.defaultPolicy);
  if (input.ownPolicy) world.storePolicy(S1, input.ownPolicy);
  const invariants = new Invariants(world);
  inspect?.(world, 'started');
  const real: Real = { world, invariants, queue: [], endpoints: [], scheduler, nextMessage: 0 };

  await fc.scheduledModelRun(scheduler, () => ({ model: {}, real }), input.commands);
  await scheduler.waitFor(world.quiet());
  if (invariants.violations.length) return invariants.violations;

  // Invariant 5: what a plan predicts is what saving and one reconcile run do, with nothing else going on.
  Object.assign(world.faults, { ec2Throttled: 0, ec2Failing: 0, poisoned: new Set(), organizationsDown: false, publishFailing: 0, crashAfterNextAct: false });
  const finish = <T>(promise: Promise<T>) => scheduler.waitFor(promise);
  const { policyId, policy } = input.candidate;
  const governed = policyId === S1 ? [S1] : [S1, S2].filter((serviceId) => !world.policies.get(serviceId)?.length);
  const plan = await finish(world.start('plan', (ports) => planPolicy(policyId, policy, ports)).done);
  const ifMatch = world.policies.get(policyId)?.length ? { ifMatch: { any: true as const } } : {};
  await finish(world.start('policy save', (ports) => replacePolicy(policyId, policy, { actor: 'carol', ...ifMatch }, ports)).done);
  const before = world.actions.length;
  inspect?.(world, 'planned');
  await finish(world.start('reconcile', (ports) => reconcile(ports)).done);
  invariants.violations.push(...planDisagreements(plan, world.actions.slice(before), governed, world));
  inspect?.(world, 'applied');

  // Invariants 4 and 6: faults stopped, every lease run out, one reconcile run.
  world.advance(world.leaseSeconds * 1000 + 1000);
  await finish(world.start('reconcile', (ports) => reconcile(ports)).done);
  await finish(world.quiet());
  invariants.quiescent();
  return invariants.violations;
}

/** Where saving and one reconcile run did other than the plan said, connection by connection. */
function planDisagreements(plan: PolicyPlan, actions: World['actions'], governed: string[], world: World): string[] {
  const done = new Map(actions.map((action) => [action.endpointId, action.action]));
  const disagreements: string[] = [];
  const predicted = new Map(plan.changes.map((change) => [change.endpointId, change]));
  for (const change of plan.changes) {
    const expected = change.effect === 'accept' ? 'accept' : change.effect === 'reject' || change.effect === 'revoke' ? 'reject' : undefined;
    const actual = done.get(change.endpointId);
    if (actual !== expected) disagreements.push(`5: the plan said ${change.effect} (${change.planned.rule}) for ${change.endpointId}, the run did ${actual ?? 'nothing'}`);
  }
  for (const [endpointId, action] of done) {
    const serviceId = world.connections.get(endpointId)?.serviceId;
    if (serviceId && governed.includes(serviceId) && !predicted.has(endpointId)) disagreements.push(`5: the run ${action}ed ${endpointId}, which the plan did not show`);
  }
  return disagreements;
}

/** The simulation as a property: it fails with the violations it found. */
export function simulationProperty(replayPath?: string) {
  return fc.asyncProperty(simulationArbitrary(replayPath), async (input) => {
    const violations = await simulate(input);
    if (violations.length) throw new Error(`invariant violations:\n${violations.join('\n')}`);
  });
}

/** The replay path of a counterexample's commands (fc.commands prints it with them). */
export function replayPathOf(input: SimulationInput): string | undefined {
  return /replayPath="([^"]*)"/.exec(String(input.commands))?.[1];
}
