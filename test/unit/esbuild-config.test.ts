import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { afterEach, describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const { esbuildOptions } = require('../../esbuild.config.cjs') as { esbuildOptions: Record<string, unknown> };

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A project with one fake SDK client laid out as given, and an entry that uses one of its schemas. */
async function projectWithClient(files: Record<string, string>): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-esbuild-'));
  for (const [path, text] of Object.entries({ ...files, 'entry.mjs': "import { used } from '@aws-sdk/client-fake';\nconsole.log(used);\n" })) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return join(dir, 'entry.mjs');
}

const client = 'node_modules/@aws-sdk/client-fake';
const packageJson = JSON.stringify({ name: '@aws-sdk/client-fake', module: './dist-es/index.js' });

describe('the bundle settings (esbuild.config.cjs)', () => {
  it("drop an SDK client's unused schemas", async () => {
    const entry = await projectWithClient({
      [`${client}/package.json`]: packageJson,
      [`${client}/dist-es/index.js`]: "export { used } from './schemas/schemas_0';\n",
      [`${client}/dist-es/schemas/schemas_0.js`]: [
        'const _u = "Used";',
        'const _n = "NeverUsed";',
        'export var used = [3, { [_u]: 1 }];',
        'export var neverUsed = [3, { [_n]: "a schema no command needs" }];',
      ].join('\n'),
    });

    const result = await build({ ...esbuildOptions, entryPoints: [entry], write: false, sourcemap: false, logLevel: 'silent' });

    const text = result.outputFiles[0]?.text ?? '';
    expect(text).toContain('Used');
    expect(text).not.toContain('a schema no command needs');
  });

  it('fail the build when an SDK client no longer has its schemas where the plugin looks', async () => {
    const entry = await projectWithClient({
      [`${client}/package.json`]: packageJson,
      [`${client}/dist-es/index.js`]: "export { used } from './schema/all';\n",
      [`${client}/dist-es/schema/all.js`]: 'const _u = "Used";\nexport var used = [3, { [_u]: 1 }];\n',
    });

    const bundling = build({ ...esbuildOptions, entryPoints: [entry], write: false, logLevel: 'silent' });

    await expect(bundling).rejects.toThrow(/no schema module found for client-fake/);
  });

  it('fail the build when the schemas are no longer written with computed keys', async () => {
    const entry = await projectWithClient({
      [`${client}/package.json`]: packageJson,
      [`${client}/dist-es/index.js`]: "export { used } from './schemas/schemas_0';\n",
      [`${client}/dist-es/schemas/schemas_0.js`]: 'export var used = [3, { Used: 1 }];\n',
    });

    const bundling = build({ ...esbuildOptions, entryPoints: [entry], write: false, logLevel: 'silent' });

    await expect(bundling).rejects.toThrow(/no computed schema keys to inline/);
  });
});

describe('a function bundled with these settings', () => {
  it("reports a failed invocation with its error's name and the TypeScript functions and lines of its stack, with the template's NODE_OPTIONS", async () => {
    dir = await mkdtemp(join(tmpdir(), 'vpce-gatekeeper-esbuild-'));
    const entry = join(dir, 'handler.ts');
    await writeFile(
      entry,
      [
        `import { ConflictError } from ${JSON.stringify(join(import.meta.dirname, '../../lib/errors.ts'))};`,
        'export function claimConnection(endpointId: string): never {',
        '  throw new ConflictError(`${endpointId} was decided by someone else`);',
        '}',
        "export const handler = async () => claimConnection('vpce-0123456789abcdef0');",
        // What Lambda's runtime reports of a failed invocation: the error's name, message and stack.
        'await handler().catch((error) => process.stdout.write(JSON.stringify({ errorType: error.name, errorMessage: error.message, trace: error.stack.split("\\n") })));',
        '',
      ].join('\n'),
    );
    await build({ ...esbuildOptions, entryPoints: [entry], outfile: join(dir, 'handler.mjs'), logLevel: 'silent' });

    const run = spawnSync(process.execPath, [join(dir, 'handler.mjs')], { env: { PATH: process.env.PATH, NODE_OPTIONS: '--enable-source-maps' }, encoding: 'utf8' });

    const report = JSON.parse(run.stdout) as { errorType: string; errorMessage: string; trace: string[] };
    expect(report).toMatchObject({ errorType: 'ConflictError', errorMessage: 'vpce-0123456789abcdef0 was decided by someone else' });
    expect(report.trace[1]).toMatch(/^ {4}at claimConnection \(.*handler\.ts:3:\d+\)$/);
  });
});
