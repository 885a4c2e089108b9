#!/usr/bin/env node
// The operator CLI. In a clone it runs from its TypeScript sources (cli/main.ts) through tsx, so that
// an edit takes effect at once; installed from a packed tarball, it runs the bundle built at pack time.
import { existsSync } from 'node:fs';

const sources = new URL('../cli/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import('../dist/vpce-gatekeeper.cjs');
}
