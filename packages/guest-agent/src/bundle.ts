import { stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUEST_AGENT_VERSION } from './version';

export const DEFAULT_BUNDLE_PATH = fileURLToPath(new URL('../dist/guest-agent.js', import.meta.url));

export interface BundleResult {
  outFile: string;
  bytes: number;
  version: string;
}

/**
 * Builds the guest agent into one minified CommonJS file runnable as `node guest-agent.js` on Node >= 18
 * with no node_modules. A `package.json` marking the directory CommonJS is written next to it.
 * esbuild is loaded only here, so importing this package for its types stays cheap.
 */
export async function bundleGuestAgent(outFile: string = DEFAULT_BUNDLE_PATH): Promise<BundleResult> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [fileURLToPath(new URL('./entry.ts', import.meta.url))],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    banner: { js: `#!/usr/bin/env node\n// nqvm guest-agent ${GUEST_AGENT_VERSION}` },
  });
  // This package is "type": "module"; the marker keeps `node dist/guest-agent.js` CommonJS inside the repo too.
  await writeFile(join(dirname(outFile), 'package.json'), '{"type":"commonjs"}\n');
  return { outFile, bytes: (await stat(outFile)).size, version: GUEST_AGENT_VERSION };
}
