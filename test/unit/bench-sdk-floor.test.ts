import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { beyondFloor, floorEntry, sdkClientsIn } from '../../bench/sdk-floor';

// The cold-start bench measures each function against its SDK floor. The floor is read from what
// esbuild put in the function's bundle, so these tests bundle real SDK clients the way the bench does.

const require = createRequire(import.meta.url);
const { esbuildOptions } = require('../../esbuild.config.cjs') as { esbuildOptions: BuildOptions };
const repoRoot = resolve(import.meta.dirname, '../..');

async function metafileOf(contents: string): Promise<Metafile> {
  const result = await build({
    ...esbuildOptions,
    stdin: { contents, resolveDir: repoRoot, sourcefile: 'entry.mjs', loader: 'js' },
    outfile: 'out.mjs',
    write: false,
    sourcemap: false,
    metafile: true,
    logLevel: 'silent',
  });
  return result.metafile;
}

const functionLike = [
  "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
  "import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';",
  "import { AcceptVpcEndpointConnectionsCommand, EC2Client, RejectVpcEndpointConnectionsCommand } from '@aws-sdk/client-ec2';",
  'const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));',
  'const ec2 = new EC2Client({});',
  'export const handler = async () => [await documents.send(new GetCommand({})), await ec2.send(new AcceptVpcEndpointConnectionsCommand({}))];',
  '// RejectVpcEndpointConnectionsCommand is imported and never used: the bundle does not hold it.',
].join('\n');

describe("a function's SDK floor", () => {
  it('holds the service clients and the commands its bundle holds, counting the service commands the document client sends', async () => {
    const uses = sdkClientsIn(await metafileOf(functionLike));

    expect(uses.map((use) => [use.package, use.client])).toEqual([
      ['@aws-sdk/client-dynamodb', 'DynamoDBClient'],
      ['@aws-sdk/client-ec2', 'EC2Client'],
    ]);
    expect(uses[0]?.commands).toContain('GetItemCommand');
    expect(uses[1]?.commands).toEqual(['AcceptVpcEndpointConnectionsCommand']);
  }, 30_000);

  it('builds into a bundle holding the same clients and commands, and reports what the function adds beyond it', async () => {
    const bundle = await metafileOf(functionLike);
    const uses = sdkClientsIn(bundle);

    const floor = await metafileOf(floorEntry(uses));

    expect(sdkClientsIn(floor)).toEqual(uses);
    expect(beyondFloor(bundle, floor).map((part) => part.part)).toContain('@aws-sdk/lib-dynamodb');
  }, 30_000);
});
