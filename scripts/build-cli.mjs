// Bundles the operator CLI (cli/main.ts and what it imports) into one file, dist/vpce-gatekeeper.cjs,
// so that a packed tarball runs anywhere with node alone: `npm pack` runs this (prepack).
import { build } from 'esbuild';

await build({
  entryPoints: ['cli/main.ts'],
  outfile: 'dist/vpce-gatekeeper.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
});
