// Moves a stage's connections to the keys they have since they were sharded (issue 20),
// and rebuilds the counts by state. See docs/operations.md, "Upgrading a stage's table".
//
//   npx tsx scripts/migrate-table.ts --table vpce-gatekeeper-prod-state [--region eu-west-1]
//   npx tsx scripts/migrate-table.ts --table vpce-gatekeeper-prod-state --recount
//
// Credentials and Region come from the default AWS chain (AWS_PROFILE, AWS_REGION, ...);
// AWS_ENDPOINT_URL_DYNAMODB points it at another DynamoDB, such as the local stack's.
import { parseArgs } from 'node:util';

const usage = 'usage: npx tsx scripts/migrate-table.ts --table <table name> [--region <region>] [--recount]';
const { values } = parseArgs({
  options: { table: { type: 'string' }, region: { type: 'string' }, recount: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
});
if (values.help || !values.table) {
  process.stderr.write(`${usage}\n`);
  process.exit(values.help ? 0 : 2);
}
// lib/ reads its configuration from the environment once, when first imported.
process.env.TABLE_NAME = values.table;
if (values.region) process.env.AWS_REGION = values.region;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { migrateLegacyConnections, recountConnections } = await import('../lib/aws/table-migration');

try {
  const progress = await migrateLegacyConnections({
    onPage: ({ moved, scanned }) => process.stderr.write(`scanned ${scanned} items of this pass, moved ${moved} connections so far\n`),
  });
  process.stdout.write(`migration done: ${progress.moved} connections moved to their sharded keys\n`);
  if (values.recount) {
    const counts = await recountConnections();
    process.stdout.write(`counts rebuilt for ${counts.size} services\n`);
  }
} catch (error) {
  process.stderr.write(`migration stopped: ${error instanceof Error ? error.message : String(error)}; run it again to go on from where it stopped\n`);
  process.exitCode = 1;
}
