'use strict';

/**
 * Builds the approvals console (console/src) into console/dist: index.html, app.js
 * and app.css, which the approvals API function serves at /console.
 *
 *   node console/build.cjs      build, and print what ships (raw and gzip bytes)
 *
 * Called by esbuild.config.cjs before serverless packages the functions, and by the
 * local stack when it starts. CommonJS so that both can call it synchronously.
 */

const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const esbuild = require('esbuild');

const SRC = path.join(__dirname, 'src');
const DIST = path.join(__dirname, 'dist');

/** Builds the console; returns each shipped file with its size, raw and gzipped. */
function buildConsole({ outdir = DIST } = {}) {
  fs.mkdirSync(outdir, { recursive: true });
  esbuild.buildSync({
    entryPoints: { app: path.join(SRC, 'main.tsx') },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome120', 'firefox120', 'safari17'],
    minify: true,
    sourcemap: false,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
    // @smithy/signature-v4 and zod are shared with the functions; in the browser, nothing from node.
    mainFields: ['browser', 'module', 'main'],
  });
  // favicon.ico holds favicon.svg drawn at 16, 32 and 48 px (PNG entries), for clients that ask for /favicon.ico.
  for (const name of ['index.html', 'favicon.svg', 'favicon.ico']) fs.copyFileSync(path.join(SRC, name), path.join(outdir, name));
  return ['index.html', 'app.js', 'app.css', 'favicon.svg', 'favicon.ico'].map((name) => {
    const bytes = fs.readFileSync(path.join(outdir, name));
    return { name, bytes: bytes.length, gzip: zlib.gzipSync(bytes, { level: 9 }).length };
  });
}

module.exports = { buildConsole, CONSOLE_DIST: DIST };

if (require.main === module) {
  const files = buildConsole();
  for (const { name, bytes, gzip } of files) console.log(`${name.padEnd(10)} ${String(bytes).padStart(8)} B  ${String(gzip).padStart(7)} B gzip`);
  const total = files.reduce((sum, f) => ({ bytes: sum.bytes + f.bytes, gzip: sum.gzip + f.gzip }), { bytes: 0, gzip: 0 });
  console.log(`${'total'.padEnd(10)} ${String(total.bytes).padStart(8)} B  ${String(total.gzip).padStart(7)} B gzip`);
}
