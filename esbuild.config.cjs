'use strict';

/**
 * The one place that says how Lambda bundles are built.
 *
 * serverless-esbuild loads this file through `custom.esbuild.config` and calls the
 * exported function; a benchmark or any other Node script can reuse the exact same
 * esbuild settings with:
 *
 *   import esbuild from 'esbuild';
 *   import config from './esbuild.config.cjs';
 *   await esbuild.build({ ...config.esbuildOptions, entryPoints: [...], outdir: '...' });
 *
 * CommonJS because serverless-esbuild `require()`s it and the package is "type": "module".
 */

const fs = require('node:fs');
const path = require('node:path');

/**
 * AWS SDK clients keep the schemas of every shape of their service in one module
 * (for EC2, over half a megabyte), written as array literals with computed keys
 * such as `{ [_xN]: _m }`. esbuild cannot prove computed keys free of side
 * effects, so it keeps every schema, and a cold start evaluates them all. The
 * keys are string constants declared in the same module: writing them in as
 * literals lets esbuild drop the schemas no command uses. Nothing else changes.
 */
const SDK_SCHEMA_MODULE = /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]dist-es[\\/]schemas[\\/]schemas_\d+\.js$/;
const SDK_CLIENT_MODULE = /[\\/]@aws-sdk[\\/](client-[^\\/]+)[\\/]dist-es[\\/]/;

const inlineSdkSchemaKeys = {
  name: 'inline-sdk-schema-keys',
  setup(build) {
    // Guarded: if an SDK upgrade moves the schemas or writes them differently, the build fails
    // here instead of quietly shipping (and cold-starting) every schema again.
    const clientsBundled = new Set();
    const clientsRewritten = new Set();
    build.onLoad({ filter: SDK_CLIENT_MODULE }, (args) => {
      clientsBundled.add(SDK_CLIENT_MODULE.exec(args.path)[1]);
      return undefined; // loaded as usual; only noted
    });
    build.onLoad({ filter: SDK_SCHEMA_MODULE }, async (args) => {
      const source = await fs.promises.readFile(args.path, 'utf8');
      const constants = new Map();
      for (const match of source.matchAll(/^const (_\w+) = ("[^"\\]*");$/gm)) constants.set(match[1], match[2]);
      let inlined = 0;
      const contents = source.replace(/\[(_\w+)\]:/g, (key, name) => {
        if (!constants.has(name)) return key;
        inlined += 1;
        return `${constants.get(name)}:`;
      });
      if (inlined === 0) {
        return { errors: [{ text: `inline-sdk-schema-keys: no computed schema keys to inline in ${args.path}; the SDK's schema layout changed, update esbuild.config.cjs` }] };
      }
      clientsRewritten.add(SDK_CLIENT_MODULE.exec(args.path)[1]);
      return { contents, loader: 'js' };
    });
    build.onEnd((result) => {
      const missed = [...clientsBundled].filter((client) => !clientsRewritten.has(client));
      if (missed.length === 0 || result.errors.length > 0) return undefined;
      return {
        errors: [{ text: `inline-sdk-schema-keys: no schema module found for ${missed.join(', ')}; the SDK's schema layout changed, update esbuild.config.cjs` }],
      };
    });
  },
};

/** Options understood by esbuild itself. */
const esbuildOptions = Object.freeze({
  bundle: true,
  // Everything goes into the bundle, the AWS SDK included: we test against the SDK
  // version in package-lock.json, not whichever copy the Lambda runtime ships. Except the
  // Organizations and STS clients: only a policy that names an OU or organization needs
  // them, and the functions import them dynamically when it does. Bundled, they would be
  // compiled at every cold start; external, serverless-esbuild installs them into the
  // package at the lockfile's version (pluginOptions.packager), loaded from there on first use.
  external: ['@aws-sdk/client-organizations', '@aws-sdk/client-sts'],
  platform: 'node',
  target: 'node22',
  format: 'esm',
  // Prefer the ES module builds of dependencies: better tree shaking of the SDK.
  mainFields: ['module', 'main'],
  outExtension: { '.js': '.mjs' },
  // CommonJS dependencies bundled into an ES module still call require() for Node
  // built-ins; give them one.
  banner: {
    js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
  },
  minify: true,
  // Not keepNames: it would call Object.defineProperty for every function and class of the bundle
  // at every cold start (about 3% of the notification function's). Error names do not need it:
  // every error class sets its `name` (lib/errors.ts, the SDK's exceptions). Nor do stack traces:
  // with NODE_OPTIONS=--enable-source-maps (serverless.yml) their frames show the TypeScript
  // functions' names and lines, from the source map (test/unit/esbuild-config.test.ts).
  keepNames: false,
  sourcemap: true,
  // Mappings are enough for stack traces; embedding every source would only grow the zip.
  sourcesContent: false,
  // Lambda hands every function its credentials in environment variables; the
  // full default chain would only add cold-start time (see the module itself).
  alias: { '@aws-sdk/credential-provider-node': path.join(__dirname, 'lib/aws/lambda-credentials.ts') },
  plugins: [inlineSdkSchemaKeys],
});

/** Options that only serverless-esbuild reads (it strips them before calling esbuild). */
const pluginOptions = Object.freeze({
  outputFileExtension: '.mjs',
  // Its default excludes the v2 'aws-sdk'; we exclude nothing (see `external`).
  exclude: [],
  packager: 'npm',
});

/**
 * The settings serverless-esbuild uses, as `custom.esbuild.config` expects: a function.
 * It first builds the console (console/dist), which the approvals API function ships
 * beside its bundle (serverless.yml: package.patterns) and serves at /console.
 */
function serverlessEsbuildConfig() {
  require('./console/build.cjs').buildConsole();
  return { ...esbuildOptions, ...pluginOptions };
}

module.exports = serverlessEsbuildConfig;
module.exports.esbuildOptions = esbuildOptions;
module.exports.pluginOptions = pluginOptions;
