import { startLocalStack, type LocalStack } from '../test/e2e/local-stack';
import { DEPLOYED_QUEUE_DEFAULTS } from '../local/lambda/deployed-defaults';
import { ALLOWED_ACCOUNT } from './local-runs';

// The fleet row: a hub and two more spokes, each (account, Region) with EC2's default rate limits
// of its own, connections created in all three at once, every notification delivered twice.
// A variant takes one spoke away (its role cannot be assumed) during the burst, and gives it back
// once the others are decided: its connections must be decided within one reconcile run.

const HUB = { accountId: '000000000000', region: 'us-east-1' };
const SPOKES = [
  { accountId: '222233334444', region: 'eu-west-1' },
  { accountId: '555566667777', region: 'ap-southeast-2' },
];
const MANAGED = { 'vpce-gatekeeper:managed': 'true' };
const key = ({ accountId, region }: { accountId: string; region: string }) => `${accountId}/${region}`;

export interface FleetSpokeResult {
  spoke: string;
  connections: number;
  /** From the last Connect (in any spoke) to the spoke's last connection accepted and recorded. */
  decidedAfterLastConnectMs: number;
  ec2Calls: { total: number; perConnection: number };
  acceptsPerConnection: { min: number; max: number };
  undecided: number;
  /** Only for the spoke taken away: the one reconcile run after it came back, and what it left undecided. */
  recovery?: { runMs: number; undecidedAfterRun: number };
}

export interface FleetResult {
  connectionsPerSpoke: number;
  duplicateDeliveries: number;
  /** The spoke unavailable during the burst, if any. */
  unavailable?: string;
  spokes: FleetSpokeResult[];
  deadLetters: number;
}

/** Starts a local stack with the fleet's spokes, runs the burst (and the variant), and stops it. */
export async function measureFleet(connectionsPerSpoke: number, duplicates: number, log: (message: string) => void): Promise<FleetResult[]> {
  const stack = await startLocalStack({
    policy: { default: { mode: 'auto', allow: [{ account: ALLOWED_ACCOUNT, label: 'bench' }], onUnmatched: 'hold' } },
    spokes: SPOKES.map(({ accountId, region }) => `${accountId}:${region}`),
    acceptDelayMs: 200,
    visibilityTimeoutMs: 180_000,
    batchingWindowMs: DEPLOYED_QUEUE_DEFAULTS.batchingWindowSeconds * 1000,
    batchSize: DEPLOYED_QUEUE_DEFAULTS.batchSize,
    env: { RECONCILE_INTERVAL_SECONDS: '0', POWERTOOLS_LOG_LEVEL: 'WARN', LOCAL_SLACK: 'off' },
  });
  try {
    log(`fleet: 3 spokes × ${connectionsPerSpoke} connections at once, every notification delivered ${duplicates} times`);
    const all = await fleetBurst(stack, connectionsPerSpoke, duplicates);
    const last = SPOKES[SPOKES.length - 1] as (typeof SPOKES)[number];
    log(`fleet: the same with ${key(last)} unavailable during the burst`);
    const oneDown = await fleetBurst(stack, connectionsPerSpoke, duplicates, last);
    return [all, oneDown];
  } finally {
    await stack.stop();
  }
}

async function fleetBurst(stack: LocalStack, perSpoke: number, duplicates: number, unavailable?: { accountId: string; region: string }): Promise<FleetResult> {
  await stack.reset();
  await stack.waitFor(async () => (await stack.health()).spokes.every((spoke) => spoke.status === 'confirmed'), { description: 'the spokes confirmed' });
  await stack.faults({ duplicateDeliveries: duplicates, ...(unavailable ? { spokeUnavailable: [`${unavailable.accountId}:${unavailable.region}`] } : {}) });
  const where = [HUB, ...SPOKES];
  const services = await Promise.all(where.map((spoke) => stack.createService({ ...spoke, tags: MANAGED })));
  const created = await Promise.all(services.map(({ serviceId }) => stack.createEndpoints(serviceId, { ownerAccountId: ALLOWED_ACCOUNT, count: perSpoke })));
  const lastConnect = Date.now();
  const reachable = where.map((spoke, i) => ({ spoke, i })).filter(({ spoke }) => !unavailable || key(spoke) !== key(unavailable));
  const undecidedIn = async (i: number) => (await stack.listEndpoints(services[i]?.serviceId as string)).filter((endpoint) => endpoint.state === 'pendingAcceptance').length;
  const decidedAt = new Map<number, number>();
  await stack.waitFor(
    async () => {
      for (const { i } of reachable) if (!decidedAt.has(i) && (await undecidedIn(i)) === 0) decidedAt.set(i, await lastDecisionAt(stack, services[i]?.serviceId as string, created[i]?.vpcEndpointIds ?? []));
      return decidedAt.size === reachable.length;
    },
    { timeoutMs: 600_000, intervalMs: 1000, description: 'the reachable spokes decided' },
  );
  // With a spoke down, its notifications wait out the queue's visibility timeout: the stack is not idle then.
  if (!unavailable) await stack.waitFor(() => stack.idle(), { timeoutMs: 120_000, description: 'the stack to go idle' });

  let recovery: FleetSpokeResult['recovery'];
  if (unavailable) {
    await stack.faults({ duplicateDeliveries: duplicates });
    const started = Date.now();
    await stack.reconcile();
    const index = where.findIndex((spoke) => key(spoke) === key(unavailable));
    recovery = { runMs: Date.now() - started, undecidedAfterRun: await undecidedIn(index) };
    decidedAt.set(index, await lastDecisionAt(stack, services[index]?.serviceId as string, created[index]?.vpcEndpointIds ?? []));
  }

  const calls = await stack.calls();
  const spokes: FleetSpokeResult[] = [];
  for (const [i, spoke] of where.entries()) {
    const ids = created[i]?.vpcEndpointIds ?? [];
    const accepts = ids.map((id) => {
      const count = calls.byEndpoint[id]?.AcceptVpcEndpointConnections;
      return (count?.received ?? 0) - (count?.failed ?? 0);
    });
    const total = Object.values(calls.byAccountRegion[key(spoke)]?.byAction ?? {}).reduce((sum, count) => sum + count.received, 0);
    const down = unavailable && key(spoke) === key(unavailable);
    spokes.push({
      spoke: key(spoke),
      connections: ids.length,
      decidedAfterLastConnectMs: (decidedAt.get(i) ?? Number.NaN) - lastConnect,
      ec2Calls: { total, perConnection: total / Math.max(1, ids.length) },
      acceptsPerConnection: { min: Math.min(...accepts), max: Math.max(...accepts) },
      undecided: await undecidedIn(i),
      ...(down ? { recovery } : {}),
    });
  }
  return {
    connectionsPerSpoke: perSpoke,
    duplicateDeliveries: duplicates,
    ...(unavailable ? { unavailable: key(unavailable) } : {}),
    spokes,
    deadLetters: (await stack.dlq()).length,
  };
}

/** When the last of these connections was recorded accepted (the decisions' own times). */
async function lastDecisionAt(stack: LocalStack, serviceId: string, endpointIds: string[]): Promise<number> {
  let last = 0;
  for (const endpointId of endpointIds) {
    const record = await stack.record(serviceId, endpointId);
    const decidedAt = record?.decision?.decidedAt;
    if (decidedAt) last = Math.max(last, Date.parse(decidedAt));
  }
  return last;
}

/** The fleet rows as Markdown, for bench/README.md's figures. */
export function fleetMarkdown(results: FleetResult[]): string {
  const lines: string[] = [];
  const row = (...cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const first = results[0];
  if (!first) return '';
  lines.push(
    `**A fleet**: 3 spokes × ${first.connectionsPerSpoke.toLocaleString('en-US')} connections created at once, each (account, Region) under EC2's default rate limits of its own, ` +
      `every notification delivered ${first.duplicateDeliveries} times; then the same with one spoke unavailable during the burst, decided by the reconcile run after it comes back.`,
    '',
  );
  row('run', 'spoke', 'decided after the last Connect', 'EC2 calls per connection', 'successful Accepts per connection', 'undecided', 'dead letters');
  row('---', '---', '---:', '---:', '---:', '---:', '---:');
  for (const r of results) {
    for (const s of r.spokes) {
      const decided = s.recovery ? `after recovery: one run of ${(s.recovery.runMs / 1000).toFixed(1)} s` : `${(s.decidedAfterLastConnectMs / 1000).toFixed(1)} s`;
      row(r.unavailable ? `${r.unavailable} down` : 'all up', s.spoke, decided, s.ec2Calls.perConnection.toFixed(3), `${s.acceptsPerConnection.min}..${s.acceptsPerConnection.max}`, s.recovery?.undecidedAfterRun ?? s.undecided, r.deadLetters);
    }
  }
  lines.push('', 'Targets: decided within 30 s of the last Connect, ≤ 0.02 EC2 calls per connection, exactly one successful Accept each, nothing dead-lettered; the spoke that was down decided within one reconcile run.');
  return lines.join('\n');
}

/** The fleet's targets, each said met or missed. */
export function fleetTargets(results: FleetResult[]): string[] {
  const lines: string[] = [];
  const say = (met: boolean, text: string) => lines.push(`  ${met ? 'met   ' : 'MISSED'} ${text}`);
  for (const r of results) {
    const run = r.unavailable ? `fleet (${r.unavailable} down)` : 'fleet';
    for (const s of r.spokes) {
      if (s.recovery) say(s.recovery.undecidedAfterRun === 0, `${run}, ${s.spoke}: decided within one reconcile run after it came back (${s.recovery.undecidedAfterRun} left)`);
      else say(s.decidedAfterLastConnectMs <= 30_000, `${run}, ${s.spoke}: all decided within 30 s of the last Connect (${(s.decidedAfterLastConnectMs / 1000).toFixed(1)} s)`);
      if (!s.recovery) say(s.ec2Calls.perConnection <= 0.02, `${run}, ${s.spoke}: ≤ 0.02 EC2 calls per connection (${s.ec2Calls.perConnection.toFixed(3)})`);
    }
  }
  return lines;
}

/** What must hold whatever the machine: every connection accepted exactly once, nothing dead-lettered, nothing left. */
export function fleetProblems(results: FleetResult[]): string[] {
  const problems: string[] = [];
  for (const r of results) {
    const run = r.unavailable ? `fleet (${r.unavailable} down)` : 'fleet';
    if (r.deadLetters) problems.push(`${run}: ${r.deadLetters} notifications in the dead-letter queue`);
    for (const s of r.spokes) {
      const left = s.recovery?.undecidedAfterRun ?? s.undecided;
      if (left) problems.push(`${run}, ${s.spoke}: ${left} connections left undecided`);
      if (s.acceptsPerConnection.min !== 1 || s.acceptsPerConnection.max !== 1) {
        problems.push(`${run}, ${s.spoke}: successful Accept calls per connection ranged ${s.acceptsPerConnection.min}..${s.acceptsPerConnection.max}, not exactly 1`);
      }
    }
  }
  return problems;
}
