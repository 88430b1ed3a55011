import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  buildDemoImages,
  isProcessAlive,
  loadAgentConfig,
  type RunningAgent,
  startAgent,
  systemRunner,
} from '@nqvm/agent';
import { type BuiltApp, buildApp, loadConfig, newPglite, openPglite } from '@nqvm/manager';
import pino from 'pino';

const ROOT = path.resolve(import.meta.dirname, '../../..');

export function inPrivateNetns(): boolean {
  try {
    return readlinkSync('/proc/self/ns/net') !== readlinkSync('/proc/1/ns/net');
  } catch {
    const links = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2);
    return links.map((l) => l.split(':')[0]?.trim() ?? '').every((n) => !n || n === 'lo' || n.startsWith('nq'));
  }
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Stack {
  base: string;
  token: string;
  manager: BuiltApp;
  agent: RunningAgent;
  agentData: string;
  images: Record<'kernel' | 'initrd' | 'rootfs', string>;
  /** HTTP status of each demo image upload (201 when it was stored). */
  imageUploads: Record<'kernel' | 'initrd' | 'rootfs', number>;
  /** Closes the manager (its VMs keep running under the agent) and starts a new one on the same database and port. */
  restartManager(): Promise<void>;
  /**
   * Starts another agent on the same data dir (close the running one first), with `env` over the first one's
   * settings (e.g. another AGENT_BIND); `agent` is the new one from then on.
   */
  startAgent(env?: Record<string, string>): Promise<RunningAgent>;
  api<T = Record<string, unknown>>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }>;
  consoleText(vmId: string): Promise<string>;
  close(): Promise<void>;
}

/** A manager (PGlite) and an agent in this process, real QEMU guests on a bridge in this private namespace. */
export async function startStack(opts: {
  cidr: string;
  bridge: string;
  agentPort: number;
  env?: Record<string, string>;
  /** Extra agent settings (e.g. AGENT_NAME). */
  agentEnv?: Record<string, string>;
}): Promise<Stack> {
  if (!inPrivateNetns())
    throw new Error('this test creates bridges and TAPs: run under unshare -n (npm test does this)');
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const demo = await buildDemoImages({
    outDir: path.join(ROOT, '.cache', 'demo-images'),
    cacheDir: path.join(ROOT, '.cache', 'demo-cache'),
    runner: systemRunner,
  });
  const admin = 'stack-admin-password';
  const managerData = await mkdtemp(path.join(tmpdir(), 'nqvm-stack-'));
  const agentData = await mkdtemp(path.join(tmpdir(), 'nqs-'));
  const config = loadConfig({
    NQVM_DATA_DIR: managerData,
    NQVM_ADMIN_PASSWORD: admin,
    NQVM_LOG_LEVEL: 'silent',
    NQVM_RECONCILE_INTERVAL_MS: '1000',
    NQVM_NETWORK_CIDR: opts.cidr,
    FC_BRIDGE: opts.bridge,
    ...opts.env,
  });
  const database = await openPglite(newPglite());
  let manager = await buildApp(config, { database, logger: false });
  await manager.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = manager.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const base = `http://127.0.0.1:${port}`;
  const login = await fetch(`${base}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: admin }),
  });
  const token = ((await login.json()) as { token: string }).token;
  const images = { kernel: '', initrd: '', rootfs: '' };
  const imageUploads = { kernel: 0, initrd: 0, rootfs: 0 };
  for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
    const res = await fetch(`${base}/v1/images/upload?name=demo-${kind}&kind=${kind}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: readFileSync(demo[kind]),
    });
    imageUploads[kind] = res.status;
    images[kind] = ((await res.json()) as { id: string }).id;
  }
  // The agent joins with a join token the admin makes (single use: a restarted agent keeps its identity).
  const joined = await fetch(`${base}/v1/join-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ description: 'e2e stack agent' }),
  });
  const agentEnv = {
    MANAGER_BASE: base,
    NQVM_JOIN_TOKEN: ((await joined.json()) as { token: string }).token,
    AGENT_BIND: `127.0.0.1:${opts.agentPort}`,
    AGENT_DATA_DIR: agentData,
    AGENT_HEARTBEAT_S: '1',
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...opts.agentEnv,
  };
  const runAgent = (env: Record<string, string> = {}) =>
    startAgent(loadAgentConfig({ ...agentEnv, ...env }), { logger: pino({ level: 'warn' }) });
  let agent = await runAgent();
  const api = async <T>(method: string, url: string, body?: unknown) => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  return {
    base,
    token,
    get manager() {
      return manager;
    },
    async restartManager() {
      await manager.app.close();
      manager = await buildApp(config, { database, logger: false });
      await manager.app.listen({ host: '127.0.0.1', port });
    },
    get agent() {
      return agent;
    },
    agentData,
    images,
    imageUploads,
    async startAgent(env) {
      agent = await runAgent(env);
      return agent;
    },
    api,
    consoleText: (id) => readFile(path.join(agentData, 'vms', id, 'console.log'), 'utf8').catch(() => ''),
    async close() {
      await agent.close();
      await manager.app.close();
      await database.close();
      const ids = await readdir(path.join(agentData, 'vms')).catch(() => [] as string[]);
      for (const id of ids) {
        const pid = Number(await readFile(path.join(agentData, 'vms', id, 'vmm.pid'), 'utf8').catch(() => '0'));
        if (pid > 1 && (await isProcessAlive(pid))) process.kill(pid, 'SIGKILL');
      }
      await rm(managerData, { recursive: true, force: true });
      await rm(agentData, { recursive: true, force: true });
      // The bridge outlives the agent by design (its VMs keep running); a test leaves none behind in the shared
      // namespace, where it would hold the gateway address and routes the next test might reuse.
      spawnSync('ip', ['link', 'del', opts.bridge], { stdio: 'ignore' });
    },
  };
}
