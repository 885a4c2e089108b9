import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_APPROVER, signedClient } from './approvals-client';
import { startLocalStack, type LocalStack } from './local-stack';

// Policies by OU and organization, enforcement when accounts leave, and sharing, end to end:
// the functions read the local AWS Organization through the local STS and the
// Organizations simulator, exactly as they would read the real ones.

const ORGANIZATION_ID = 'o-a1b2c3d4e5';
const PROD_ACCOUNT = '111122223333';
const PROD_OTHER = '111122224444';
const SUSPENDED = '111122225555';
const SANDBOX_ACCOUNT = '222233334444';
const ROOT_ACCOUNT = '333344445555';
const STRANGER = '999988887777';
const FOREIGN = 'arn:aws:iam::777766665555:root';

interface Organization {
  rootId: string;
  workloads: string;
  prod: string;
  sandboxes: string;
}

let stack: LocalStack;
let org: Organization;

beforeAll(async () => {
  stack = await startLocalStack();
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  await stack.reset();
  org = await createOrganization();
});

async function post<T>(path: string, body: unknown, status = 201): Promise<T> {
  const response = await stack.request('POST', path, body);
  if (response.status !== status) throw new Error(`POST ${path} answered ${response.status}: ${JSON.stringify(response.body)}`);
  return response.body as T;
}

/** Root › Workloads › Prod, Root › Sandboxes; accounts in Prod (one suspended), in Sandboxes and at the root. */
async function createOrganization(): Promise<Organization> {
  const { rootId } = await post<{ rootId: string }>('/local/organization', { organizationId: ORGANIZATION_ID });
  const unit = async (parentId: string, name: string) =>
    (await post<{ organizationalUnitId: string }>('/local/organization/units', { parentId, name })).organizationalUnitId;
  const workloads = await unit(rootId, 'Workloads');
  const prod = await unit(workloads, 'Prod');
  const sandboxes = await unit(rootId, 'Sandboxes');
  await addAccount(PROD_ACCOUNT, prod);
  await addAccount(PROD_OTHER, prod);
  await addAccount(SUSPENDED, prod, 'SUSPENDED');
  await addAccount(SANDBOX_ACCOUNT, sandboxes);
  await addAccount(ROOT_ACCOUNT, rootId);
  return { rootId, workloads, prod, sandboxes };
}

async function addAccount(accountId: string, parentId: string, status?: 'ACTIVE' | 'SUSPENDED'): Promise<void> {
  await post('/local/organization/accounts', { accountId, parentId, ...(status ? { status } : {}) });
}

async function moveAccount(accountId: string, parentId: string): Promise<void> {
  await post(`/local/organization/accounts/${accountId}/move`, { parentId }, 200);
}

/** Writes the default policy through the approvals API, as an approver would. */
async function putDefaultPolicy(policy: Record<string, unknown>): Promise<void> {
  const approver = signedClient(stack.baseUrl, LOCAL_APPROVER);
  const current = await approver.request('GET', '/policies/default');
  const headers: Record<string, string> = current.status === 200 ? { 'if-match': `"${(current.body as { version: number }).version}"` } : {};
  const written = await approver.request('PUT', '/policies/default', { body: policy, headers });
  if (written.status !== 200 && written.status !== 201) throw new Error(`PUT /policies/default answered ${written.status}: ${JSON.stringify(written.body)}`);
}

async function createService(allowedPrincipals?: string[]): Promise<string> {
  return (await post<{ serviceId: string }>('/local/services', allowedPrincipals ? { allowedPrincipals } : {})).serviceId;
}

/** Creates an endpoint and waits until the handler has recorded a decision for it. */
async function decided(serviceId: string, ownerAccountId: string) {
  const { vpcEndpointId } = await stack.createEndpoint(serviceId, { ownerAccountId });
  const record = await stack.waitFor(async () => {
    const current = await stack.record(serviceId, vpcEndpointId);
    return current?.decision && !current.claim ? current : undefined;
  });
  const { state } = (await stack.listEndpoints(serviceId)).find((endpoint) => endpoint.vpcEndpointId === vpcEndpointId) ?? {};
  return { vpcEndpointId, decision: record.decision, state };
}

async function organizationCalls(): Promise<{ total: number; byAction: Record<string, { received: number; failed: number }> }> {
  return (await stack.request('GET', '/local/organization/calls')).body as never;
}

async function allowedPrincipals(serviceId: string): Promise<string[]> {
  return ((await stack.request('GET', `/local/services/${serviceId}/permissions`)).body as { allowedPrincipals: string[] }).allowedPrincipals;
}

describe('policies by OU and organization', () => {
  it('accepts an account below an allowed OU, recording the entry, the OU path, the status and when it was read', async () => {
    await putDefaultPolicy({ allow: [{ organizationalUnit: org.prod, label: 'prod' }] });
    const serviceId = await createService();

    const { decision, state } = await decided(serviceId, PROD_ACCOUNT);

    expect(decision).toMatchObject({ outcome: 'accept', acted: true, rule: 'allow:prod' });
    expect(decision?.reason).toMatch(
      new RegExp(`^account ${PROD_ACCOUNT} is in OU ${org.prod} \\(prod\\): Root › Workloads › Prod, ACTIVE, read at \\d{4}-\\d\\d-\\d\\dT`),
    );
    expect(state).toMatch(/^(pending|available)$/);
  });

  it('accepts an account in an OU nested below the allowed one, and one anywhere in an allowed organization', async () => {
    await putDefaultPolicy({
      allow: [
        { organizationalUnit: org.workloads, label: 'workloads' },
        { organization: ORGANIZATION_ID, label: 'our-org' },
      ],
    });
    const serviceId = await createService();

    const nested = await decided(serviceId, PROD_ACCOUNT);
    const atRoot = await decided(serviceId, ROOT_ACCOUNT);

    expect(nested.decision).toMatchObject({ outcome: 'accept', rule: 'allow:workloads' });
    expect(atRoot.decision).toMatchObject({ outcome: 'accept', rule: 'allow:our-org' });
    expect(atRoot.decision?.reason).toContain(`is in organization ${ORGANIZATION_ID} (our-org): Root, ACTIVE`);
  });

  it('rejects an account below a denied OU even though an entry allows the account itself', async () => {
    await putDefaultPolicy({
      allow: [{ account: SANDBOX_ACCOUNT, label: 'named' }],
      deny: [{ organizationalUnit: org.sandboxes, label: 'sandboxes' }],
    });
    const serviceId = await createService();

    const { decision, state } = await decided(serviceId, SANDBOX_ACCOUNT);

    expect(decision).toMatchObject({ outcome: 'reject', acted: true, rule: 'deny:sandboxes' });
    expect(state).toBe('rejected');
  });

  it('holds a suspended account below an allowed OU, and an account outside the organization', async () => {
    await putDefaultPolicy({ allow: [{ organizationalUnit: org.prod, label: 'prod' }, { organization: ORGANIZATION_ID }], onUnmatched: 'reject' });
    const serviceId = await createService();

    const suspended = await decided(serviceId, SUSPENDED);
    const stranger = await decided(serviceId, STRANGER);

    expect(suspended.decision).toMatchObject({ outcome: 'reject', rule: 'onUnmatched:reject' });
    expect(suspended.decision?.reason).toContain('SUSPENDED');
    expect(stranger.decision?.reason).toContain(`account ${STRANGER} is not an account of organization ${ORGANIZATION_ID}`);
    // onUnmatched: hold holds them instead
    await putDefaultPolicy({ allow: [{ organizationalUnit: org.prod, label: 'prod' }, { organization: ORGANIZATION_ID }] });
    const heldSuspended = await decided(serviceId, SUSPENDED);
    const heldStranger = await decided(serviceId, STRANGER);
    expect([heldSuspended.state, heldStranger.state]).toEqual(['pendingAcceptance', 'pendingAcceptance']);
    expect([heldSuspended.decision?.outcome, heldStranger.decision?.outcome]).toEqual(['hold', 'hold']);
  });

  it('shows the OU path and the status it used when a policy is evaluated through the API', async () => {
    await putDefaultPolicy({ allow: [{ organizationalUnit: org.prod, label: 'prod' }] });
    const approver = signedClient(stack.baseUrl, LOCAL_APPROVER);

    const answer = await approver.request('POST', '/policies/default/evaluate', { body: { accountId: SUSPENDED, region: 'us-east-1' } });

    expect(answer.status).toBe(200);
    expect((answer.body as { evaluation: unknown }).evaluation).toMatchObject({
      outcome: 'hold',
      organization: { organizationId: ORGANIZATION_ID, path: 'Root › Workloads › Prod', status: 'SUSPENDED', member: true },
    });
  });
});

describe('when Organizations cannot be read', () => {
  it('holds the request with the reason, and the reconciler revokes nothing', async () => {
    await putDefaultPolicy({ allow: [{ organizationalUnit: org.prod, label: 'prod' }], enforce: true, maxRevocationPercent: 100 });
    const serviceId = await createService();
    const admitted = await decided(serviceId, PROD_ACCOUNT);
    expect(admitted.decision?.outcome).toBe('accept');
    await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).every((endpoint) => endpoint.state === 'available'));
    await moveAccount(PROD_ACCOUNT, org.sandboxes);
    await stack.faults({ organizationsUnavailable: true });

    const held = await decided(serviceId, PROD_OTHER);
    const summary = await stack.reconcile();

    expect(held.state).toBe('pendingAcceptance');
    expect(held.decision).toMatchObject({ outcome: 'hold', rule: 'organization-unreadable' });
    expect(held.decision?.reason).toBe('organization membership could not be read: AccessDeniedException');
    const approvalNeeded = (await stack.outbox())
      .map((message) => message.message as { eventType: string; endpointId?: string; decision?: { reason: string } })
      .find((event) => event.eventType === 'approval-needed' && event.endpointId === held.vpcEndpointId);
    expect(approvalNeeded?.decision?.reason).toBe('organization membership could not be read: AccessDeniedException');
    expect(summary.totals).toMatchObject({ revoked: 0, accepted: 0 });
    expect((await stack.listEndpoints(serviceId)).find((e) => e.vpcEndpointId === admitted.vpcEndpointId)?.state).toBe('available');
  });
});

describe('enforcement when accounts leave', () => {
  it('revokes the connection of an account moved out of the allowed OU, within the safety limit', async () => {
    await putDefaultPolicy({
      allow: [{ organizationalUnit: org.prod, label: 'prod' }],
      enforce: true,
      maxRevocationsPerRun: 1,
      maxRevocationPercent: 100,
    });
    const serviceId = await createService();
    const first = await decided(serviceId, PROD_ACCOUNT);
    const second = await decided(serviceId, PROD_OTHER);
    await stack.waitFor(async () => (await stack.listEndpoints(serviceId)).every((endpoint) => endpoint.state === 'available'));
    await moveAccount(PROD_ACCOUNT, org.sandboxes);
    await moveAccount(PROD_OTHER, org.sandboxes);

    const overLimit = await stack.reconcile();
    await moveAccount(PROD_OTHER, org.prod);
    const withinLimit = await stack.reconcile();

    expect(overLimit.totals).toMatchObject({ revoked: 0, revocationLimitHits: 1 });
    expect(withinLimit.totals).toMatchObject({ revoked: 1, revocationLimitHits: 0 });
    const states = Object.fromEntries((await stack.listEndpoints(serviceId)).map((e) => [e.vpcEndpointId, e.state]));
    expect(states).toEqual({ [first.vpcEndpointId]: 'rejected', [second.vpcEndpointId]: 'available' });
    const revoked = await stack.record(serviceId, first.vpcEndpointId);
    expect(revoked?.decision).toMatchObject({ outcome: 'reject', rule: 'enforce:left-ou:prod', decidedBy: 'policy' });
    expect(revoked?.decision?.reason).toContain('Root › Sandboxes, ACTIVE');
  });
});

describe('sharing: sync', () => {
  it('shares the service with accounts added to the OU, removes those moved out, and keeps a foreign principal', async () => {
    await putDefaultPolicy({ allow: [{ organizationalUnit: org.prod, label: 'prod' }], sharing: 'sync', maxRevocationPercent: 100 });
    const serviceId = await createService([FOREIGN]);
    const NEWCOMER = '111122226666';
    await addAccount(NEWCOMER, org.prod);
    const refused = await stack.request('POST', `/local/services/${serviceId}/endpoints`, { ownerAccountId: NEWCOMER });

    await stack.reconcile();
    const shared = await allowedPrincipals(serviceId);
    const newcomer = await decided(serviceId, NEWCOMER);
    await moveAccount(PROD_OTHER, org.sandboxes);
    await stack.reconcile();
    const afterMove = await allowedPrincipals(serviceId);

    expect(refused.status).toBe(403);
    expect([...shared].sort()).toEqual([FOREIGN, `arn:aws:iam::${PROD_ACCOUNT}:root`, `arn:aws:iam::${PROD_OTHER}:root`, `arn:aws:iam::${NEWCOMER}:root`].sort());
    expect(shared).not.toContain(`arn:aws:iam::${SUSPENDED}:root`);
    expect(newcomer.decision).toMatchObject({ outcome: 'accept', rule: 'allow:prod' });
    expect([...afterMove].sort()).toEqual([FOREIGN, `arn:aws:iam::${PROD_ACCOUNT}:root`, `arn:aws:iam::${NEWCOMER}:root`].sort());
    const events = (await stack.outbox())
      .map((message) => message.message as { eventType: string; added?: string[]; removed?: string[] })
      .filter((event) => event.eventType === 'sharing-changed');
    expect(events.map(({ added, removed }) => ({ added: added?.length, removed }))).toEqual([
      { added: 3, removed: [] },
      { added: 0, removed: [`arn:aws:iam::${PROD_OTHER}:root`] },
    ]);
  });
});

describe('the Organizations calls of a burst', () => {
  const ACCOUNTS = Array.from({ length: 50 }, (_, i) => String(555500000000 + i));

  it('decides a 1,000-connection burst from 50 accounts within the cache without one Organizations call', async () => {
    // EC2's own rate limits are not what this measures: every notification describes its endpoint.
    await stack.faults({ ec2RateLimits: false });
    for (const accountId of ACCOUNTS) await addAccount(accountId, org.prod);
    await putDefaultPolicy({ allow: [{ organizationalUnit: org.prod, label: 'prod' }] });
    const serviceId = await createService();
    const burst = async (perAccount: number) => {
      const before = (await organizationCalls()).total;
      const started = Date.now();
      for (const ownerAccountId of ACCOUNTS) await stack.createEndpoints(serviceId, { ownerAccountId, count: perAccount });
      // Every request decided: accepted, or held by a throttled read (the reconcile run decides those).
      await stack.waitFor(
        async () => {
          const pending = (await stack.listEndpoints(serviceId)).filter((endpoint) => endpoint.state === 'pendingAcceptance');
          if (!pending.length) return true;
          const records = await Promise.all(pending.slice(0, 20).map((endpoint) => stack.record(serviceId, endpoint.vpcEndpointId)));
          return records.every((record) => record?.decision?.outcome === 'hold') && stack.idle();
        },
        { timeoutMs: 400_000, intervalMs: 1000, description: 'every request of the burst decided' },
      );
      console.log(`burst of ${perAccount * ACCOUNTS.length} decided in ${Date.now() - started} ms`);
      return (await organizationCalls()).total - before;
    };

    // Cold: nothing cached, one connection per account, each account read on its own.
    const cold = await burst(1);
    // The cold burst spent Organizations' allowance; the reconciler runs minutes later in a stage.
    await new Promise((resume) => setTimeout(resume, 5000));
    const beforeRun = (await organizationCalls()).total;
    // The reconciler reads the whole structure and caches every account (and decides what a throttled read held).
    await stack.reconcile();
    const reconcileRun = (await organizationCalls()).total - beforeRun;
    const warm = await burst(20);
    const endpoints = await stack.listEndpoints(serviceId);
    const calls = await organizationCalls();

    console.log(
      `Organizations calls: cold, 50 connections from 50 accounts: ${cold}; one reconcile run: ${reconcileRun}; ` +
        `within the cache, 1,000 connections from the same 50 accounts: ${warm}; by action ${JSON.stringify(calls.byAction)}`,
    );
    expect(endpoints).toHaveLength(50 + 1000);
    expect(warm).toBe(0);
    // Per account one DescribeAccount and one ListParents; the OU path (2 OUs) once; DescribeOrganization once.
    // Organizations throttles the cold burst: a read whose ListParents was refused is held, and starts
    // again later from DescribeAccount, so each refused ListParents may cost one more of each; a refused
    // DescribeAccount costs nothing more. (Only the cold burst reads accounts one by one.)
    const succeeded = (action: string) => (calls.byAction[action]?.received ?? 0) - (calls.byAction[action]?.failed ?? 0);
    const refused = (action: string) => calls.byAction[action]?.failed ?? 0;
    expect(cold).toBeGreaterThanOrEqual(2 * ACCOUNTS.length);
    expect(succeeded('DescribeAccount')).toBeLessThanOrEqual(ACCOUNTS.length + refused('ListParents'));
    expect(succeeded('ListParents')).toBeLessThanOrEqual(ACCOUNTS.length + 2 + refused('ListParents'));
    expect(succeeded('DescribeOrganizationalUnit')).toBeLessThanOrEqual(2);
    expect(succeeded('DescribeOrganization')).toBe(1);
    // ListRoots, then per parent (root, Workloads, Prod, Sandboxes) one listing of OUs and one of accounts (50 in Prod: 3 pages),
    // then the flat ListAccounts the walk is checked against (55 accounts: 3 pages of 20).
    expect(reconcileRun).toBe(1 + 4 + 4 + 2 + 3);
    expect(endpoints.filter((endpoint) => endpoint.state === 'pendingAcceptance')).toEqual([]);
  }, 900_000);
});

describe('the local Organizations and EC2 permissions', () => {
  it('refuses bad control bodies with 400 and unknown accounts with 404', async () => {
    expect((await stack.request('POST', '/local/organization/units', { parentId: 'nope', name: 'x' })).status).toBe(400);
    expect((await stack.request('POST', '/local/organization/accounts', { accountId: '1', parentId: org.rootId })).status).toBe(400);
    expect((await stack.request('PATCH', `/local/organization/accounts/${PROD_ACCOUNT}`, { status: 'CLOSED' })).status).toBe(400);
    expect((await stack.request('POST', '/local/organization/accounts/123456789012/move', { parentId: org.prod })).status).toBe(404);
    expect((await stack.request('POST', '/local/services', { allowedPrincipals: ['everyone'] })).status).toBe(400);
    expect((await stack.request('DELETE', `/local/organization/accounts/${ROOT_ACCOUNT}`)).status).toBe(200);
    expect((await stack.request('DELETE', `/local/organization/accounts/${ROOT_ACCOUNT}`)).status).toBe(404);
  });
});
