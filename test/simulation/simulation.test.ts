import fc from 'fast-check';
import { describe, it } from 'vitest';
import { simulationProperty } from './simulation';

// The engine's invariants over random histories (test/simulation/simulation.ts).
// `npm test` runs a bounded number; `npm run simulate -- --runs N --seed S` runs
// as many as asked, and replays a violation with --seed S --path P.
const RUNS = Number(process.env.VPCE_SIMULATION_RUNS ?? 150);

describe('the engine, simulated', () => {
  it(`keeps its invariants over ${RUNS} random histories of notifications, reconcile runs, approvers, policy saves, moving accounts and faults`, async () => {
    await fc.assert(simulationProperty(), { numRuns: RUNS });
  }, 120_000);
});
