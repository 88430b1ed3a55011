import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import type { TestNetwork } from '../../support/test-networks.ts';

/**
 * nqvm's programs as real processes, for the tests that start, kill and restart them (`nqvm up`, `npm start`, the
 * manager and the agent on their own), and what such tests look at on the host afterwards.
 */

export const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'packages/cli/bin/nqvm.ts');
const DEMO = path.join(ROOT, '.cache/demo-images');
const DEBS = path.join(ROOT, '.cache/demo-cache/debs');

export interface Proc {
  proc: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  exited: Promise<number | null>;
}

/** A program with its output collected as it comes; `detached` gives it a process group of its own. */
export function spawnCollected(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env: NodeJS.ProcessEnv; detached?: boolean },
): Proc {
  let out = '';
  const proc = spawn(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    detached: opts.detached ?? false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (b: Buffer) => {
    out += b.toString();
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

/** `nqvm up` from source on `net`'s ports, subnet and bridge; `env` over those settings. */
export function startNqvmUp(dataDir: string, net: TestNetwork, env: Record<string, string> = {}): Proc {
  return spawnCollected(
    process.execPath,
    ['--import', 'tsx', CLI, 'up', '--data-dir', dataDir, '--bind', `127.0.0.1:${net.managerPort}`],
    {
      env: {
        ...process.env,
        AGENT_BIND: `127.0.0.1:${net.agentPort}`,
        NQVM_NETWORK_CIDR: net.cidr,
        FC_BRIDGE: net.bridge,
        NQVM_LOG_LEVEL: 'warn',
        ...env,
      },
    },
  );
}

/** One of nqvm's own programs from source (`manager` or `agent`), configured by `env` only. */
export function startProgram(name: 'manager' | 'agent', env: Record<string, string>): Proc {
  const bin = path.join(ROOT, `packages/${name}/bin/nqvm-${name}.ts`);
  return spawnCollected(process.execPath, ['--import', 'tsx', bin], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
  });
}

/** Kills it with `signal` (SIGKILL: a crash) and waits until it is gone. */
export async function kill(p: Proc, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill(signal);
  await p.exited;
}

/**
 * Gives a data dir what a first `nqvm up` with network would have left: the demo images and the Debian packages they
 * were built from (this namespace has no network). `npm test` builds them into .cache before isolating it.
 */
export function seedDemoImages(dataDir: string): void {
  if (!existsSync(path.join(DEMO, 'manifest.json')) || !existsSync(DEBS))
    throw new Error('demo images missing: npm test builds them into .cache before the network is isolated');
  cpSync(DEMO, path.join(dataDir, 'demo-images'), { recursive: true });
  mkdirSync(path.join(dataDir, 'cache', 'debs'), { recursive: true });
  symlinkSync(DEBS, path.join(dataDir, 'cache', 'debs', 'debs'));
}

/** The demo kernel, initrd and rootfs files (built by `npm test` before the network is isolated). */
export const DEMO_FILES = {
  kernel: path.join(DEMO, 'vmlinuz'),
  initrd: path.join(DEMO, 'initrd.gz'),
  rootfs: path.join(DEMO, 'rootfs.ext4'),
} as const;

/** The QEMU processes serving a VM (its id is in its command line: paths and -name). */
export function vmmsOf(vmId: string): number[] {
  const pids: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.includes('qemu-system') && cmd.includes(vmId)) pids.push(Number(pid));
  }
  return pids;
}

/** The name of a VM's first TAP (the agent derives it from the VM id). */
export function tapOf(vmId: string): string {
  return `nqt-${createHash('sha256').update(vmId).digest('hex').slice(0, 8)}-0`;
}

/** Every network link of this namespace, one a line. */
export function links(): string {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
}

/** A JSON client of one manager; `token()` is read at each call (it changes when a test logs in again). */
export function jsonClient(base: string, token: () => string = () => '') {
  return async <T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const t = token();
    const res = await fetch(base + url, {
      method,
      headers: {
        ...(t ? { authorization: `Bearer ${t}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
}
