/**
 * The production build: one ESM bundle per bin (`packages/<pkg>/dist/<bin>.mjs`, workspace code inlined, npm
 * dependencies left to node_modules), with the files the bundles read at run time copied beside them (SQL
 * migrations, the command helper, the guest agent bundle). Run by `npm run build`, which also builds the web
 * console. Every npm package a bundle imports must be a declared dependency of the workspace that imports it.
 */
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { bundleGuestAgent } from '@nqvm/guest-agent';
import { build, type Metafile } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '..');
const pkgDir = (name: string) => join(ROOT, 'packages', name);

interface BinSpec {
  pkg: string;
  bin: string;
  /** Run-time files the bundled code finds next to itself through `import.meta.url`. */
  beside: ('migrations' | 'spawner' | 'guest-agent')[];
}

export const BINS: BinSpec[] = [
  { pkg: 'manager', bin: 'nqvm-manager', beside: ['migrations'] },
  { pkg: 'agent', bin: 'nqvm-agent', beside: ['spawner', 'guest-agent'] },
  { pkg: 'cli', bin: 'nqvm', beside: ['migrations', 'spawner', 'guest-agent'] },
];

const BUILTIN = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
const packageOf = (spec: string) =>
  spec
    .split('/')
    .slice(0, spec.startsWith('@') ? 2 : 1)
    .join('/');

function declaredDeps(pkg: string, kind: 'dependencies' | 'devDependencies'): Set<string> {
  const json = JSON.parse(readFileSync(join(pkgDir(pkg), 'package.json'), 'utf8')) as Record<
    string,
    Record<string, string> | undefined
  >;
  return new Set(Object.keys(json[kind] ?? {}));
}

/** npm packages imported by each workspace's source in a bundle, which that workspace does not declare. */
function undeclared(meta: Metafile): string[] {
  const problems: string[] = [];
  for (const [input, info] of Object.entries(meta.inputs)) {
    const m = /^packages\/([^/]+)\//.exec(input);
    if (!m?.[1]) continue;
    const deps = declaredDeps(m[1], 'dependencies');
    const devDeps = declaredDeps(m[1], 'devDependencies');
    for (const imp of info.imports) {
      if (!imp.external || BUILTIN.has(imp.path) || imp.path.startsWith('.')) continue;
      const name = packageOf(imp.path);
      // A dynamic import of a dev dependency is a path only a source checkout takes (the guest agent's bundler).
      if (deps.has(name) || (imp.kind === 'dynamic-import' && devDeps.has(name))) continue;
      problems.push(`${input} imports ${name}, not a dependency of packages/${m[1]}`);
    }
  }
  return problems;
}

export async function buildAll(): Promise<{ bundles: string[] }> {
  const guestAgent = join(pkgDir('guest-agent'), 'dist', 'guest-agent.js');
  await bundleGuestAgent(guestAgent);
  const bundles: string[] = [];
  const problems: string[] = [];
  for (const spec of BINS) {
    const dist = join(pkgDir(spec.pkg), 'dist');
    rmSync(dist, { recursive: true, force: true });
    mkdirSync(dist, { recursive: true });
    const outfile = join(dist, `${spec.bin}.mjs`);
    const result = await build({
      entryPoints: [join(pkgDir(spec.pkg), 'bin', `${spec.bin}.ts`)],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'linked',
      metafile: true,
      logLevel: 'warning',
      absWorkingDir: ROOT,
      plugins: [
        {
          name: 'npm-dependencies-external',
          setup(b) {
            // Workspace packages (@nqvm/*) are inlined; everything else from npm stays a run-time dependency.
            b.onResolve({ filter: /^[^./]/ }, (args) =>
              args.path.startsWith('@nqvm/') ? undefined : { path: args.path, external: true },
            );
          },
        },
      ],
    });
    // The entry's `#!/usr/bin/env -S node --import tsx` line is kept by esbuild: bundles run on plain node.
    writeFileSync(outfile, readFileSync(outfile, 'utf8').replace(/^#!.*\n/, '#!/usr/bin/env node\n'));
    problems.push(...undeclared(result.metafile));
    if (spec.beside.includes('migrations'))
      cpSync(join(pkgDir('manager'), 'src', 'db', 'migrations'), join(dist, 'migrations'), { recursive: true });
    if (spec.beside.includes('spawner'))
      for (const file of ['spawner-child.mjs', 'launch.mjs'])
        cpSync(join(pkgDir('agent'), 'src', 'host', file), join(dist, file));
    if (spec.beside.includes('guest-agent')) cpSync(guestAgent, join(dist, 'guest-agent.js'));
    // guest-agent.js is CommonJS; the .mjs bundles beside it are ESM whatever this marker says.
    writeFileSync(join(dist, 'package.json'), '{"type":"commonjs"}\n');
    bundles.push(relative(ROOT, outfile));
  }
  if (problems.length) throw new Error(`undeclared dependencies:\n  ${[...new Set(problems)].join('\n  ')}`);
  return { bundles };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const started = Date.now();
  const { bundles } = await buildAll();
  process.stdout.write(`built ${bundles.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
