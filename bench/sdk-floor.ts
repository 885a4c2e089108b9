import type { Metafile } from 'esbuild';

// A function's SDK floor: the AWS SDK clients and commands its bundle contains,
// alone, each client constructed. Read from the bundle's metafile (what esbuild
// actually put in it), never from a list kept by hand, so that a new command or
// client in a gateway moves the floor with it.

/** The target: each function's cold start at most this multiple of its SDK floor's. */
export const FLOOR_TARGET = 1.15;

/** A client module of an SDK service package: `@aws-sdk/client-ec2/dist-es/EC2Client.js`. */
const CLIENT_MODULE = /(?:^|\/)node_modules\/(@aws-sdk\/client-[a-z0-9-]+)\/dist-es\/(\w+Client)\.js$/;
/** A command module of an SDK service package: `@aws-sdk/client-ec2/dist-es/commands/AcceptVpcEndpointConnectionsCommand.js`. */
const COMMAND_MODULE = /(?:^|\/)node_modules\/(@aws-sdk\/client-[a-z0-9-]+)\/dist-es\/commands\/(\w+Command)\.js$/;

/** One SDK service package as a bundle uses it: its client class and the commands the bundle holds. */
export interface SdkClientUse {
  /** `@aws-sdk/client-ec2` */
  package: string;
  /** `EC2Client` */
  client: string;
  /** `AcceptVpcEndpointConnectionsCommand`, …, sorted. */
  commands: string[];
}

/** The output of a metafile built from one entry point (the bundle). */
function bundleOutput(metafile: Metafile): Metafile['outputs'][string] {
  const outputs = Object.values(metafile.outputs).filter((output) => output.entryPoint !== undefined);
  if (outputs.length !== 1 || !outputs[0]) throw new Error(`expected one bundle in the metafile, found ${outputs.length}`);
  return outputs[0];
}

/**
 * The SDK service clients (`@aws-sdk/client-*`) and commands whose modules a bundle holds.
 * Modules esbuild tree-shook away (no bytes in the output) do not count: the bundle does not
 * contain them. Helpers layered over a client (the DynamoDB document client) are not clients
 * of a service: what they add is reported as beyond the floor, and the service commands they
 * send (GetItem for the document client's Get) are in the floor.
 */
export function sdkClientsIn(metafile: Metafile): SdkClientUse[] {
  const byPackage = new Map<string, { client?: string; commands: Set<string> }>();
  const entry = (pkg: string) => byPackage.get(pkg) ?? byPackage.set(pkg, { commands: new Set() }).get(pkg)!;
  for (const [path, input] of Object.entries(bundleOutput(metafile).inputs)) {
    if (input.bytesInOutput === 0) continue;
    const client = CLIENT_MODULE.exec(path);
    if (client?.[1] && client[2]) entry(client[1]).client = client[2];
    const command = COMMAND_MODULE.exec(path);
    if (command?.[1] && command[2]) entry(command[1]).commands.add(command[2]);
  }
  return [...byPackage]
    .map(([pkg, use]) => {
      if (!use.client) throw new Error(`the bundle holds commands of ${pkg} (${[...use.commands].join(', ')}) but not its client`);
      return { package: pkg, client: use.client, commands: [...use.commands].sort() };
    })
    .sort((a, b) => a.package.localeCompare(b.package));
}

/**
 * The floor's entry module: the clients and commands imported the way the product imports them
 * (from each package's root), every client constructed with no options, every command kept
 * (exported, so that the bundler cannot drop it), and a handler, as a Lambda module has.
 */
export function floorEntry(uses: SdkClientUse[]): string {
  const lines = uses.map((use) => `import { ${[use.client, ...use.commands].join(', ')} } from '${use.package}';`);
  lines.push(
    `export const clients = [${uses.map((use) => `new ${use.client}({})`).join(', ')}];`,
    `export const commands = [${uses.flatMap((use) => use.commands).join(', ')}];`,
    'export const handler = async () => clients.length + commands.length;',
  );
  return `${lines.join('\n')}\n`;
}

/** Bytes a bundle holds by part: a package (`zod`, `@smithy/core`) or a source folder (`lib/aws`, `handlers`). */
export function bytesByPart(metafile: Metafile): Map<string, number> {
  const parts = new Map<string, number>();
  for (const [path, input] of Object.entries(bundleOutput(metafile).inputs)) {
    if (input.bytesInOutput === 0) continue;
    const part = partOf(path);
    parts.set(part, (parts.get(part) ?? 0) + input.bytesInOutput);
  }
  return parts;
}

function partOf(path: string): string {
  const inPackage = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (inPackage?.[1]) return inPackage[1];
  const segments = path.replace(/^\.\.?\//, '').split('/');
  return segments.length > 2 ? segments.slice(0, 2).join('/') : (segments[0] ?? path);
}

/** What one part of a bundle adds to its floor. */
export interface PartBeyondFloor {
  part: string;
  bytes: number;
}

/** The parts of a bundle beyond its floor's, largest first: what the bundle adds to the SDK (at least `minBytes` each). */
export function beyondFloor(bundle: Metafile, floor: Metafile, minBytes = 512): PartBeyondFloor[] {
  const floorParts = bytesByPart(floor);
  return [...bytesByPart(bundle)]
    .map(([part, bytes]) => ({ part, bytes: bytes - (floorParts.get(part) ?? 0) }))
    .filter((part) => part.bytes >= minBytes)
    .sort((a, b) => b.bytes - a.bytes);
}
