#!/usr/bin/env node
// The installed entry point: runs the bundle `npm run build` makes (from source, bin/nqvm-agent.ts runs through tsx).
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/nqvm-agent.mjs', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('nqvm-agent is not built: run `npm run build` in the nqvm checkout first\n');
  process.exit(1);
}
await import(bundle.href);
