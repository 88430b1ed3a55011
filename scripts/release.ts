/**
 * The installable tree of nqvm as built by `npm run build`: package manifests and lock, each bin's launcher and
 * bundle, the guest agent bundle, the web console and `deploy/` — and no TypeScript source. `npm ci --omit=dev`
 * in it gives the three programs with production dependencies only (no tsx, no esbuild).
 *
 *   tsx scripts/release.ts DIR              assemble the tree in DIR
 *   tsx scripts/release.ts --seed-npm-cache  fetch its production dependencies into npm's cache (network), so
 *                                            the install test can run `npm ci --offline` in a private namespace
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

export function assembleRelease(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(dir, f));
  cpSync(join(ROOT, 'deploy'), join(dir, 'deploy'), { recursive: true });
  for (const pkg of readdirSync(join(ROOT, 'packages'))) {
    const from = join(ROOT, 'packages', pkg);
    const to = join(dir, 'packages', pkg);
    mkdirSync(to, { recursive: true });
    cpSync(join(from, 'package.json'), join(to, 'package.json'));
    if (existsSync(join(from, 'dist'))) cpSync(join(from, 'dist'), join(to, 'dist'), { recursive: true });
    if (existsSync(join(from, 'bin')))
      for (const f of readdirSync(join(from, 'bin')).filter((f) => f.endsWith('.mjs')))
        cpSync(join(from, 'bin', f), join(to, 'bin', f));
  }
  for (const bundle of ['manager/dist/nqvm-manager.mjs', 'agent/dist/nqvm-agent.mjs', 'cli/dist/nqvm.mjs'])
    if (!existsSync(join(dir, 'packages', bundle))) throw new Error(`packages/${bundle} is missing: npm run build`);
}

/** `npm ci --omit=dev` as the release test runs it: offline when `offline`, else filling npm's cache. */
export function npmCiProduction(dir: string, offline: boolean): void {
  const r = spawnSync(
    'npm',
    ['ci', '--omit=dev', '--no-audit', '--no-fund', offline ? '--offline' : '--prefer-offline'],
    { cwd: dir, encoding: 'utf8', timeout: 600_000 },
  );
  if (r.status !== 0) throw new Error(`npm ci --omit=dev failed in ${dir}:\n${r.stderr}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const arg = process.argv[2];
  if (arg === '--seed-npm-cache') {
    const dir = mkdtempSync(join(tmpdir(), 'nqvm-release-'));
    try {
      assembleRelease(dir);
      npmCiProduction(dir, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else if (arg) assembleRelease(resolve(arg));
  else throw new Error('usage: tsx scripts/release.ts DIR | --seed-npm-cache');
}
