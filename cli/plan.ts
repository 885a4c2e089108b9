import { createInterface } from 'node:readline/promises';
import type { PolicyPlan } from '../lib/policy-plan';
import { table } from './table';
import { safeText } from './terminal';

/** A plan as POST /policies/{policyId}/plan answers it. */
export type { PolicyPlan };

/** A plan for a terminal: a summary line, one row per connection, and any safety limit that would trip. */
export function renderPlan(plan: PolicyPlan): string {
  const { summary } = plan;
  const base = plan.baseVersion === null ? 'a new policy' : `replacing version ${plan.baseVersion}`;
  const lines = [
    `policy ${plan.policyId} (${base}): ${summary.accept} to accept, ${summary.reject} to reject, ${summary.revoke} to revoke, ` +
      `${summary.hold} held, ${summary.unchanged} admitted unchanged` +
      (summary.unreadable ? `, ${summary.unreadable} not decided (the organization could not be read)` : ''),
  ];
  if (plan.changes.length) {
    lines.push(
      table(
        plan.changes.map((c) => ({
          EFFECT: c.effect,
          SERVICE: c.serviceId,
          ENDPOINT: c.endpointId,
          ACCOUNT: c.ownerAccountId,
          STATE: c.state,
          NOW: `${c.current.outcome} (${c.current.rule})`,
          PLANNED: `${c.planned.outcome} (${c.planned.rule})`,
          WHY: c.planned.reason,
        })),
      ),
    );
  }
  for (const trip of plan.revocationLimit ?? []) {
    lines.push(
      `safety limit: ${trip.candidates} revocation(s) of ${trip.admitted} admitted connection(s) on ${trip.serviceId} exceed ` +
        `${trip.maxRevocationsPerRun} per run or ${trip.maxRevocationPercent}%, so none of them would be revoked; approvers are alerted instead`,
    );
  }
  return lines.join('\n');
}

/** Asks a yes/no question on the terminal; anything but y or yes is no. */
export async function confirm(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^(y|yes)$/i.test((await prompt.question(`${safeText(question)} [y/N] `)).trim());
  } finally {
    prompt.close();
  }
}
