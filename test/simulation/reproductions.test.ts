import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../lib/domain/policy';
import { handleNotificationBatch } from '../../lib/notifications';
import { planPolicy } from '../../lib/policy-plan';
import { replacePolicy } from '../../lib/policy-admin';
import { reconcile } from '../../lib/reconciler';
import { ROOT_ID, World } from './world';

// The reproductions of issue 18, each pinned as a deterministic test on the
// in-memory AWS: the world changes at an exact point of a run (beforeCall), as
// it did on the local stack when the bug was found.

const SERVICE = 'vpce-svc-0a1b2c3d4e5f60718';
const SANDBOX = 'ou-root-sandbox1';
const WORKLOADS = 'ou-root-workload';
const TEAM_A = 'ou-root-teamaaaa';
const TEAM_B = 'ou-root-teambbbb';
const PROD = 'ou-root-prodprod';
const NEWCOMER = '222233334444';
const MOVER = '333344445555';
const NAMED = '111122223333';
const PROD_ACCOUNT = '555566667777';

function organization(world: World): void {
  world.addUnit(SANDBOX, 'Sandbox', ROOT_ID);
  world.addUnit(WORKLOADS, 'Workloads', ROOT_ID);
  world.addUnit(TEAM_A, 'TeamA', WORKLOADS);
  world.addUnit(TEAM_B, 'TeamB', WORKLOADS);
  world.addUnit(PROD, 'Prod', WORKLOADS);
  world.addService(SERVICE);
}

/** Changes the world once the call `name` with `arg` has been answered (at the run's next call). */
function afterCall(world: World, name: string, arg: string, change: () => void): void {
  let answered = false;
  world.beforeCall = (call) => {
    if (answered) {
      answered = false;
      change();
    } else if (call.name === name && call.args[0] === arg) answered = true;
  };
}

async function reconcileRun(world: World) {
  return world.start('reconcile', (ports) => reconcile(ports)).done;
}

describe('an account missing from the organization walk is never taken to be outside the organization', () => {
  it('rejects, by its OU, an account that joined Sandbox while the walk went on, whose Connect notification was lost', async () => {
    const world = new World();
    organization(world);
    world.storePolicy('default', parsePolicy({ allow: [{ account: '*', label: 'anyone' }], deny: [{ organizationalUnit: SANDBOX, label: 'sandbox' }] }));
    world.createEndpoint(SERVICE, 'vpce-00000000000000001', NEWCOMER);
    // The walk has listed Sandbox's accounts; then the account joins Sandbox.
    afterCall(world, 'organizations.listAccountsIn', SANDBOX, () => world.joinOrganization(NEWCOMER, SANDBOX));

    const summary = await reconcileRun(world);

    expect(world.connections.get('vpce-00000000000000001')?.state).toBe('rejected');
    expect(world.records.get('vpce-00000000000000001')?.decision).toMatchObject({ outcome: 'reject', rule: 'deny:sandbox' });
    expect(summary.totals).toMatchObject({ accepted: 0, rejected: 1 });
  });

  it('keeps the connection of an account that moved between two OUs below the allowed one while the walk went on', async () => {
    const world = new World();
    organization(world);
    world.joinOrganization(MOVER, TEAM_B);
    world.storePolicy('default', parsePolicy({ allow: [{ organizationalUnit: WORKLOADS, label: 'workloads' }], enforce: true, maxRevocationPercent: 100 }));
    world.createEndpoint(SERVICE, 'vpce-00000000000000002', MOVER);
    await reconcileRun(world);
    world.advance(5_000);
    expect(world.connections.get('vpce-00000000000000002')?.state).toBe('available');
    // TeamA is listed (the account is still in TeamB), then it moves there before TeamB is listed.
    afterCall(world, 'organizations.listAccountsIn', TEAM_A, () => world.moveAccount(MOVER, TEAM_A));

    const summary = await reconcileRun(world);

    expect(summary.totals).toMatchObject({ revoked: 0 });
    expect(world.connections.get('vpce-00000000000000002')?.state).toBe('available');
  });

  it('reads on its own an account the walk missed while it moved between two OUs, and places it where it is', async () => {
    const world = new World();
    organization(world);
    world.joinOrganization(MOVER, TEAM_B);
    afterCall(world, 'organizations.listAccountsIn', TEAM_A, () => world.moveAccount(MOVER, TEAM_A));

    const reading = await world.start('reconcile', (ports) => ports.memberships.walked([MOVER])).done;

    expect(reading.memberships.get(MOVER)).toMatchObject({ kind: 'member', path: [{ id: ROOT_ID }, { id: WORKLOADS }, { id: TEAM_A }] });
    expect(reading.confirmed.has(MOVER)).toBe(true);
    expect(world.accountReads.filter((read) => read.accountId === MOVER && read.direct).length).toBeGreaterThan(0);
  });

  it('reads an account on its own when a notification finds it missing from what the last walk cached', async () => {
    const world = new World();
    organization(world);
    world.storePolicy('default', parsePolicy({ allow: [{ account: '*', label: 'anyone' }], deny: [{ organizationalUnit: SANDBOX, label: 'sandbox' }] }));
    await reconcileRun(world);
    world.joinOrganization(NEWCOMER, SANDBOX);
    world.createEndpoint(SERVICE, 'vpce-00000000000000003', NEWCOMER);

    const outcome = await world.start('notification', (ports) =>
      handleNotificationBatch([{ messageId: 'm1', body: JSON.stringify({ eventType: 'Connect', serviceId: SERVICE, vpcEndpointId: 'vpce-00000000000000003' }) }], ports),
    ).done;

    expect(outcome.failedMessageIds).toEqual([]);
    expect(world.connections.get('vpce-00000000000000003')?.state).toBe('rejected');
    expect(world.records.get('vpce-00000000000000003')?.decision?.rule).toBe('deny:sandbox');
  });

  it('revokes an account moved out of the allowed OU only once a read of that account confirms it', async () => {
    const world = new World();
    organization(world);
    world.joinOrganization(MOVER, PROD);
    world.storePolicy('default', parsePolicy({ allow: [{ organizationalUnit: PROD, label: 'prod' }], enforce: true, maxRevocationPercent: 100 }));
    world.createEndpoint(SERVICE, 'vpce-00000000000000004', MOVER);
    await reconcileRun(world);
    world.advance(5_000);
    world.moveAccount(MOVER, SANDBOX);
    // The walk saw the move; the confirming read finds the account back in Prod.
    world.beforeCall = ({ name, args }) => {
      if (name === 'organizations.describeAccount' && args[0] === MOVER) world.moveAccount(MOVER, PROD);
    };

    const kept = await reconcileRun(world);
    world.beforeCall = undefined;
    world.moveAccount(MOVER, SANDBOX);
    const revoked = await reconcileRun(world);

    expect(kept.totals).toMatchObject({ revoked: 0 });
    expect(revoked.totals).toMatchObject({ revoked: 1 });
    expect(world.records.get('vpce-00000000000000004')?.decision).toMatchObject({ outcome: 'reject', rule: 'enforce:left-ou:prod' });
  });
});

describe('the plan says what saving does', () => {
  it('plans a candidate with OU entries on the memberships a decision reads (accepts, rejects and revocations), and saving it does exactly that', async () => {
    const world = new World();
    organization(world);
    world.joinOrganization(PROD_ACCOUNT, PROD);
    world.joinOrganization(MOVER, SANDBOX);
    // Two consumers admitted earlier by the policy's OU entry; one has since moved to Sandbox.
    const LEAVER = '444455556666';
    world.joinOrganization(LEAVER, PROD);
    world.storePolicy('default', parsePolicy({ allow: [{ organizationalUnit: WORKLOADS, label: 'workloads' }] }));
    const admitted = [world.createEndpoint(SERVICE, 'vpce-0000000000000000c', LEAVER), world.createEndpoint(SERVICE, 'vpce-0000000000000000d', LEAVER)];
    await reconcileRun(world);
    world.advance(5_000);
    world.moveAccount(LEAVER, SANDBOX);
    world.storePolicy('default', parsePolicy({}));
    const named = world.createEndpoint(SERVICE, 'vpce-00000000000000005', NAMED);
    const prod = world.createEndpoint(SERVICE, 'vpce-00000000000000006', PROD_ACCOUNT);
    const sandbox = world.createEndpoint(SERVICE, 'vpce-00000000000000007', MOVER);
    const stranger = world.createEndpoint(SERVICE, 'vpce-00000000000000008', '999988887777');
    await reconcileRun(world);
    const candidate = {
      allow: [{ account: NAMED, label: 'named' }, { organizationalUnit: PROD, label: 'prod' }],
      deny: [{ organizationalUnit: SANDBOX, label: 'sandbox' }],
      onUnmatched: 'reject',
      enforce: true,
      maxRevocationPercent: 100,
    };

    const plan = await world.start('plan', (ports) => planPolicy('default', candidate, ports)).done;
    await world.start('save', (ports) => replacePolicy('default', candidate, { actor: 'alice', ifMatch: { any: true } }, ports)).done;
    const before = world.actions.length;
    await reconcileRun(world);

    const effects = Object.fromEntries(plan.changes.map((change) => [change.endpointId, change.effect]));
    expect(effects).toEqual({
      [named.endpointId]: 'accept',
      [prod.endpointId]: 'accept',
      [sandbox.endpointId]: 'reject',
      [stranger.endpointId]: 'reject',
      [admitted[0]?.endpointId ?? '']: 'revoke',
      [admitted[1]?.endpointId ?? '']: 'revoke',
    });
    expect(plan.summary).toMatchObject({ accept: 2, reject: 2, revoke: 2, hold: 0, unreadable: 0 });
    const done = Object.fromEntries(world.actions.slice(before).map((action) => [action.endpointId, action.action]));
    expect(done).toEqual({
      [named.endpointId]: 'accept',
      [prod.endpointId]: 'accept',
      [sandbox.endpointId]: 'reject',
      [stranger.endpointId]: 'reject',
      [admitted[0]?.endpointId ?? '']: 'reject',
      [admitted[1]?.endpointId ?? '']: 'reject',
    });
  });

  it('agrees with the engine on a claim whose action failed: it holds nothing, so both decide the request', async () => {
    const world = new World();
    organization(world);
    world.storePolicy('default', parsePolicy({ allow: [{ account: NAMED, label: 'named' }] }));
    const request = world.createEndpoint(SERVICE, 'vpce-00000000000000009', NAMED);
    world.faults.poisoned.add(request.endpointId);
    await reconcileRun(world);
    world.faults.poisoned.clear();
    expect(world.records.get(request.endpointId)?.claim).toMatchObject({ status: 'failed' });
    const candidate = { allow: [{ account: NAMED, label: 'still-named' }] };

    const plan = await world.start('plan', (ports) => planPolicy('default', candidate, ports)).done;
    await world.start('save', (ports) => replacePolicy('default', candidate, { actor: 'alice', ifMatch: { any: true } }, ports)).done;
    await reconcileRun(world);

    expect(plan.changes).toMatchObject([{ endpointId: request.endpointId, effect: 'accept', planned: { rule: 'allow:still-named' } }]);
    expect(world.connections.get(request.endpointId)?.state).toBe('pending');
    expect(world.records.get(request.endpointId)?.decision).toMatchObject({ outcome: 'accept', rule: 'allow:still-named' });
  });
});

describe('one endpoint EC2 fails on does not fail its healthy siblings', () => {
  const connect = (endpointId: string) => JSON.stringify({ eventType: 'Connect', serviceId: SERVICE, vpcEndpointId: endpointId });

  function batchOfTwo() {
    const world = new World();
    organization(world);
    world.storePolicy('default', parsePolicy({ allow: [{ account: NAMED, label: 'named' }] }));
    const poisoned = world.createEndpoint(SERVICE, 'vpce-0000000000000000a', NAMED);
    const healthy = world.createEndpoint(SERVICE, 'vpce-0000000000000000b', NAMED);
    const handle = () =>
      world.start('notification', (ports) =>
        handleNotificationBatch(
          [
            { messageId: 'poisoned', body: connect(poisoned.endpointId) },
            { messageId: 'healthy', body: connect(healthy.endpointId) },
          ],
          ports,
        ),
      ).done;
    return { world, poisoned, healthy, handle };
  }

  it('accepts the healthy Connect when the Accept naming both fails, and hands back only the poisoned one', async () => {
    const { world, poisoned, healthy, handle } = batchOfTwo();
    // EC2 described both; from the Accept on, every call naming the poisoned endpoint fails.
    world.beforeCall = ({ name }) => {
      if (name === 'ec2.accept') world.faults.poisoned.add(poisoned.endpointId);
    };

    const outcome = await handle();

    expect(outcome.failedMessageIds).toEqual(['poisoned']);
    expect(world.connections.get(healthy.endpointId)?.state).toBe('pending');
    expect(world.connections.get(poisoned.endpointId)?.state).toBe('pendingAcceptance');
    expect(world.records.get(poisoned.endpointId)?.history.at(-1)).toMatchObject({ type: 'action-failed', code: 'Unavailable' });
    expect(world.records.get(poisoned.endpointId)?.claim?.status).toBe('failed');
  });

  it('decides the healthy Connect when describing the poisoned one fails, and hands back only the poisoned one', async () => {
    const { world, poisoned, healthy, handle } = batchOfTwo();
    world.faults.poisoned.add(poisoned.endpointId);

    const outcome = await handle();

    expect(outcome.failedMessageIds).toEqual(['poisoned']);
    expect(world.connections.get(healthy.endpointId)?.state).toBe('pending');
    expect(world.records.get(poisoned.endpointId)).toBeUndefined();
  });
});
