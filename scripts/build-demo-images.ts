import path from 'node:path';
import { systemRunner } from '../packages/agent/src/host/exec.js';
import { buildDemoImages } from '../packages/agent/src/images/demo/index.js';

// Usage: tsx scripts/build-demo-images.ts <outDir> [cacheDir]
const [outArg, cacheArg] = process.argv.slice(2);
if (!outArg) {
  console.error('usage: tsx scripts/build-demo-images.ts <outDir> [cacheDir]');
  process.exit(2);
}
const outDir = path.resolve(outArg);
const cacheDir = path.resolve(cacheArg ?? path.join(path.dirname(outDir), `${path.basename(outDir)}-cache`));
const started = performance.now();
const images = await buildDemoImages({ outDir, cacheDir, runner: systemRunner });
process.stdout.write(`${JSON.stringify({ ...images, seconds: (performance.now() - started) / 1000 }, null, 2)}\n`);
