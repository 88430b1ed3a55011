/**
 * A stand-in for Firecracker's `jailer` (no binary exists here): it parses and checks the argv as the jailer v1.16
 * does (required --id, --exec-file, --uid, --gid; known flags only; firecracker's arguments after `--`), records it
 * in `<chroot base>/<exec name>/<id>/jailer-argv.json`, then runs the exec file with `--id` added, as the jailer
 * does. It cannot chroot, drop privileges or unshare: the chroot is passed to the Firecracker stand-in as a path
 * prefix (FC_STANDIN_CHROOT), and with --new-pid-ns the child's pid goes to `<root>/<exec name>.pid`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const VALUED = new Set([
  '--id',
  '--exec-file',
  '--uid',
  '--gid',
  '--chroot-base-dir',
  '--netns',
  '--cgroup',
  '--cgroup-version',
  '--parent-cgroup',
  '--resource-limit',
]);
const SWITCHES = new Set(['--daemonize', '--new-pid-ns']);

function fail(message: string): never {
  process.stderr.write(`jailer stand-in: ${message}\n`);
  process.exit(1);
}

const argv = process.argv.slice(2);
const split = argv.indexOf('--');
const own = split < 0 ? argv : argv.slice(0, split);
const fcArgs = split < 0 ? [] : argv.slice(split + 1);
const values = new Map<string, string[]>();
const switches = new Set<string>();
for (let i = 0; i < own.length; i++) {
  const a = own[i]!;
  if (SWITCHES.has(a)) switches.add(a);
  else if (VALUED.has(a)) {
    const v = own[++i];
    if (v === undefined) fail(`${a} needs a value`);
    values.set(a, [...(values.get(a) ?? []), v]);
  } else fail(`unknown argument ${a}`);
}
const one = (name: string) => values.get(name)?.[0];
for (const required of ['--id', '--exec-file', '--uid', '--gid']) if (!one(required)) fail(`${required} is required`);
for (const n of ['--uid', '--gid']) if (!/^\d+$/.test(one(n)!)) fail(`${n} must be a number`);
for (const c of values.get('--cgroup') ?? []) if (!/^[a-z_]+\.[a-z_.]+=.+$/.test(c)) fail(`bad --cgroup ${c}`);
const version = one('--cgroup-version');
if (version !== undefined && version !== '1' && version !== '2') fail('--cgroup-version must be 1 or 2');
const id = one('--id')!;
const execFile = one('--exec-file')!;
const jailDir = path.join(one('--chroot-base-dir') ?? '/srv/jailer', path.basename(execFile), id);
const root = path.join(jailDir, 'root');
mkdirSync(root, { recursive: true });
writeFileSync(path.join(jailDir, 'jailer-argv.json'), `${JSON.stringify(argv)}\n`);

const child = spawn(execFile, ['--id', id, ...fcArgs], {
  stdio: 'inherit',
  env: { ...process.env, FC_STANDIN_CHROOT: root },
});
child.once('spawn', () => {
  if (switches.has('--new-pid-ns')) writeFileSync(path.join(root, `${path.basename(execFile)}.pid`), `${child.pid}\n`);
});
child.once('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
