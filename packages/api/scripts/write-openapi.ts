import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAsyncApi } from '../src/asyncapi.ts';
import { buildOpenApi } from '../src/openapi.ts';

// `npm run openapi` rewrites packages/api/openapi.json and asyncapi.json; a unit test fails when either drifts.
const dir = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const [file, doc] of [
  ['openapi.json', buildOpenApi()],
  ['asyncapi.json', buildAsyncApi()],
] as const) {
  writeFileSync(join(dir, file), `${JSON.stringify(doc, null, 2)}\n`);
  console.log(`wrote ${join(dir, file)}`);
}
