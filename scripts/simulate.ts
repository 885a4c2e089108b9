/**
 * npm run simulate -- --runs N --seed S [--path P]
 *
 * Runs the engine's deterministic simulation (test/simulation/simulation.ts) N
 * times from seed S and ends with one line: "N runs, V invariant violations".
 * Each violation (the first three shrunk) is printed with the command that
 * replays it: --seed S --path P, P being fast-check's path of the shrunk
 * history and, after '~', the replay path fc.commands needs. A run is
 * deterministic (its interleaving comes from the generated scheduler), so
 * --path with the run's index alone replays it unshrunk and shrinks it again to
 * the same history. Nothing reaches AWS: every port is in memory.
 */
import { parseArgs } from 'node:util';

// The engine's modules read their configuration when loaded; the simulation uses none of it.
process.env.TABLE_NAME ??= 'vpce-gatekeeper-simulation';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

const { values } = parseArgs({ options: { runs: { type: 'string' }, seed: { type: 'string' }, path: { type: 'string' } } });
const runs = Number(values.runs ?? (values.path ? 1 : 100));
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error('usage: npm run simulate -- --runs N --seed S [--path P]');
  process.exit(2);
}

const fc = (await import('fast-check')).default;
const { replayPathOf, simulate, simulationArbitrary, simulationProperty } = await import('../test/simulation/simulation');

/** Prints a failed check: the shrunk history, its violations, and how to replay it. */
function report(result: Awaited<ReturnType<typeof fc.check<[Parameters<typeof simulate>[0]]>>>, run?: number): void {
  const [input] = result.counterexample ?? [];
  const path = `${result.counterexamplePath ?? ''}~${input ? (replayPathOf(input) ?? '') : ''}`;
  console.log(`\nviolation, seed ${result.seed}, replay: npm run simulate -- --seed ${result.seed} --path '${path}'`);
  if (run !== undefined) console.log(`  (the run as generated, shrunk again the same way: --seed ${result.seed} --path ${run})`);
  if (input) {
    console.log(`  starting policies: default ${JSON.stringify(input.defaultPolicy)}, own ${JSON.stringify(input.ownPolicy ?? null)}`);
    console.log(`  commands: ${String(input.commands).replace(/\s*\/\*replayPath=.*\*\//, '')}`);
    console.log(`  then a plan of ${input.candidate.policyId} ${JSON.stringify(input.candidate.policy)}, saved, and one reconcile run; then quiescence`);
  }
  console.log(`  ${String((result.errorInstance as Error | undefined)?.message ?? result.errorInstance).replace(/\n/g, '\n  ')}`);
}

const started = Date.now();
let violations = 0;
if (values.path) {
  const [path, replayPath] = values.path.split('~');
  const result = await fc.check(simulationProperty(replayPath || undefined), { seed, path });
  if (result.failed) {
    violations = 1;
    report(result);
  }
} else {
  // Every run once, counting those that break an invariant; then the first few again, shrunk.
  const failing: number[] = [];
  let index = 0;
  await fc.check(
    fc.asyncProperty(simulationArbitrary(), async (input) => {
      if ((await simulate(input)).length) failing.push(index);
      index++;
    }),
    { seed, numRuns: runs },
  );
  violations = failing.length;
  for (const run of failing.slice(0, 3)) report(await fc.check(simulationProperty(), { seed, path: String(run) }), run);
  if (failing.length > 3) console.log(`\n(${failing.length - 3} more violating runs not shrunk: runs ${failing.slice(3, 13).join(', ')}${failing.length > 13 ? ', …' : ''})`);
}
console.error(`seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${values.path ? 1 : runs} runs, ${violations} invariant violations`);
process.exit(violations ? 1 : 0);
