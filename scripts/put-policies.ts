import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

/**
 * Loads a policy file (JSON or YAML, keyed by endpoint service id or `default`)
 * into a deployed stage's table, each policy as a new version:
 *
 *   npx tsx scripts/put-policies.ts --stage prod policies.yaml
 *
 * Uses the default AWS credential chain and region.
 */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { stage: { type: 'string' }, table: { type: 'string' }, actor: { type: 'string' } },
    allowPositionals: true,
  });
  const [file] = positionals;
  if (!file || (!values.stage && !values.table)) {
    throw new Error('usage: put-policies (--stage STAGE | --table TABLE) [--actor NAME] FILE');
  }
  process.env.TABLE_NAME = values.table ?? `vpce-gatekeeper-${values.stage}-state`;
  // The store reads its configuration when first loaded, so it is loaded after TABLE_NAME is set.
  const { parsePolicyFile } = await import('../lib/domain/policy-file');
  const { putPolicy } = await import('../lib/aws/policy-store');
  const policies = parsePolicyFile(await readFile(file, 'utf8'));
  const actor = values.actor ?? process.env.USER ?? 'put-policies';
  for (const [policyId, policy] of policies) {
    const stored = await putPolicy(policyId, policy, { actor });
    process.stdout.write(`${policyId}: version ${stored.version} written to ${process.env.TABLE_NAME}\n`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`put-policies: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
