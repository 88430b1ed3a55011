/**
 * Live metrics benchmark (issue 4): 10 running demo VMs, every one watched at 1 Hz through the manager's
 * `GET /v1/vms/{id}/metrics/ws`. Measures the host agent's CPU time spent on metrics, as a share of one core
 * (target ≤ 5 %), and the bytes per second on the manager↔agent link, each as "with subscribers" minus the idle
 * baseline measured in the same run (before and after).
 *
 *   unshare -n sh -c 'ip link set lo up && npx tsx bench/guest-metrics.ts [window seconds, default 60]'
 *
 * The agent runs as its own process so its CPU (plus the children it waits for, e.g. `ip`) is read from
 * /proc/<pid>/stat apart from the manager's; both directions of the link pass through counting TCP proxies.
 * Prints figures only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildDemoImages, isProcessAlive, systemRunner } from '@nqvm/agent';
import { buildApp, loadConfig, newPglite, openPglite } from '@nqvm/manager';
import WebSocket from 'ws';
import { inPrivateNetns } from '../test/e2e/support/stack.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const VMS = 10;
const WINDOW_S = Number(process.argv[2] ?? 60);
const AGENT_PORT = 19097;
const CLK_TCK = 100;

if (!inPrivateNetns()) {
  console.error(
    "run inside a private network namespace: unshare -n sh -c 'ip link set lo up && npx tsx bench/guest-metrics.ts'",
  );
  process.exit(2);
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A TCP proxy that counts bytes in both directions. */
function countingProxy(listenPort: number, targetPort: number): Promise<{ server: Server; bytes: () => number }> {
  let total = 0;
  const server = createServer((client) => {
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    client.on('data', (b: Buffer) => {
      total += b.length;
    });
    upstream.on('data', (b: Buffer) => {
      total += b.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  return new Promise((resolve) =>
    server.listen(listenPort, '127.0.0.1', () => resolve({ server, bytes: () => total })),
  );
}

/** utime + stime + cutime + cstime of a process, in seconds. */
function ownCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [11, 12, 13, 14].reduce((s, i) => s + Number(f[i]), 0) / CLK_TCK;
}

/**
 * The agent's CPU including its command helper (a long-lived child that runs `ip`, `tc`… for it, so its time never
 * reaches the agent's cutime). VMMs are the helper's children and never exit during a window, so they do not count.
 */
function cpuSeconds(pid: number): number {
  let total = ownCpuSeconds(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && stat.includes('(node)')) total += ownCpuSeconds(Number(entry));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return total;
}

interface Window {
  cpuShare: number;
  bytesPerS: number;
  seconds: number;
}

async function measure(pid: number, link: () => number, seconds: number): Promise<Window> {
  const c0 = cpuSeconds(pid);
  const b0 = link();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const dt = (performance.now() - t0) / 1000;
  return { cpuShare: (cpuSeconds(pid) - c0) / dt, bytesPerS: (link() - b0) / dt, seconds: dt };
}

const demo = await buildDemoImages({
  outDir: path.join(ROOT, '.cache', 'demo-images'),
  cacheDir: path.join(ROOT, '.cache', 'demo-cache'),
  runner: systemRunner,
});
const admin = 'bench-admin-password';
const managerData = mkdtempSync(path.join(tmpdir(), 'nqvm-gmb-'));
const agentData = mkdtempSync(path.join(tmpdir(), 'nqg-'));
const manager = await buildApp(
  loadConfig({
    NQVM_DATA_DIR: managerData,
    NQVM_ADMIN_PASSWORD: admin,
    NQVM_LOG_LEVEL: 'silent',
    NQVM_NETWORK_CIDR: '10.221.0.0/24',
    FC_BRIDGE: 'nqbr-gmb',
    NQVM_CPU_OVERCOMMIT: '8',
  }),
  { database: await openPglite(newPglite()), logger: false },
);
await manager.app.listen({ host: '127.0.0.1', port: 0 });
const addr = manager.app.server.address();
const managerPort = typeof addr === 'object' && addr ? addr.port : 0;
const base = `http://127.0.0.1:${managerPort}`;
const toManager = await countingProxy(0, managerPort);
const toManagerAddr = toManager.server.address();
const toManagerPort = typeof toManagerAddr === 'object' && toManagerAddr ? toManagerAddr.port : 0;
const toAgent = await countingProxy(AGENT_PORT, AGENT_PORT + 1);
const link = () => toManager.bytes() + toAgent.bytes();

let agent: ChildProcess | undefined;
const sockets: WebSocket[] = [];
try {
  const token = (
    (await (
      await fetch(`${base}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: admin }),
      })
    ).json()) as { token: string }
  ).token;
  const auth = { authorization: `Bearer ${token}` };
  const api = async <T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const images: Record<string, string> = {};
  for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
    const res = await fetch(`${base}/v1/images/upload?name=demo-${kind}&kind=${kind}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: readFileSync(demo[kind]),
    });
    images[kind] = ((await res.json()) as { id: string }).id;
  }
  agent = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'packages/agent/bin/nqvm-agent.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      MANAGER_BASE: `http://127.0.0.1:${toManagerPort}`,
      NQVM_JOIN_TOKEN: (await manager.services.joinTokens.create({}, 'bench')).token,
      AGENT_BIND: `127.0.0.1:${AGENT_PORT + 1}`,
      AGENT_ADVERTISE_URL: `http://127.0.0.1:${AGENT_PORT}`,
      AGENT_DATA_DIR: agentData,
      AGENT_LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const agentPid = agent.pid ?? 0;
  await until(
    'the agent to register',
    async () => {
      const hosts = await api<{ items?: { status?: string }[] } | { status?: string }[]>('GET', '/v1/hosts');
      const list = Array.isArray(hosts.body) ? hosts.body : (hosts.body.items ?? []);
      return list.length > 0;
    },
    60_000,
  );
  const ids: string[] = [];
  for (let i = 0; i < VMS; i++) {
    const r = await api<{ id: string }>('POST', '/v1/vms', {
      name: `gmb-${i}`,
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: images.kernel,
      initrd_image_id: images.initrd,
      rootfs_image_id: images.rootfs,
    });
    if (r.status !== 202) throw new Error(`create ${i}: ${r.status} ${JSON.stringify(r.body)}`);
    ids.push(r.body.id);
  }
  const t0 = Date.now();
  await Promise.all(
    ids.map((id) =>
      until(
        `${id} guest ready`,
        async () => (await api<{ guest_ready_at: string | null }>('GET', `/v1/vms/${id}`)).body.guest_ready_at,
        600_000,
      ),
    ),
  );
  process.stderr.write(`${VMS} guests ready in ${((Date.now() - t0) / 1000).toFixed(0)} s; measuring\n`);

  const before = await measure(agentPid, link, WINDOW_S);
  let frames = 0;
  let healthyFrames = 0;
  const streaming = new Set<string>();
  for (const id of ids) {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/vms/${id}/metrics/ws`, { headers: auth });
    ws.on('message', (d, bin) => {
      if (bin) return;
      const m = JSON.parse(d.toString()) as { type?: string; guest?: { health?: string } };
      if (m.type !== 'sample') return;
      frames++;
      streaming.add(id);
      if (m.guest?.health === 'healthy') healthyFrames++;
    });
    sockets.push(ws);
  }
  await until('every VM to stream a frame', async () => streaming.size === VMS, 120_000);
  const f0 = frames;
  const h0 = healthyFrames;
  const watched = await measure(agentPid, link, WINDOW_S);
  const framesPerS = (frames - f0) / watched.seconds;
  const healthyShare = (healthyFrames - h0) / Math.max(frames - f0, 1);
  for (const ws of sockets) ws.close();
  const after = await measure(agentPid, link, WINDOW_S);

  const idleCpu = (before.cpuShare + after.cpuShare) / 2;
  const idleBytes = (before.bytesPerS + after.bytesPerS) / 2;
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const report = {
    vms: VMS,
    window_s: WINDOW_S,
    frames_per_s: Number(framesPerS.toFixed(2)),
    frames_with_guest_healthy: pct(healthyShare),
    agent_cpu_idle_before: pct(before.cpuShare),
    agent_cpu_idle_after: pct(after.cpuShare),
    agent_cpu_with_subscribers: pct(watched.cpuShare),
    agent_cpu_on_metrics: pct(watched.cpuShare - idleCpu),
    agent_cpu_on_metrics_target: '≤ 5.00 %',
    link_bytes_per_s_idle: Math.round(idleBytes),
    link_bytes_per_s_with_subscribers: Math.round(watched.bytesPerS),
    link_bytes_per_s_on_metrics: Math.round(watched.bytesPerS - idleBytes),
    link_bytes_per_frame: Math.round((watched.bytesPerS - idleBytes) / Math.max(framesPerS, 1e-9)),
    agent_alive: await isProcessAlive(agentPid),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} finally {
  for (const ws of sockets) ws.close();
  agent?.kill('SIGTERM');
  await manager.app.close();
  toManager.server.close();
  toAgent.server.close();
  // VMMs outlive their agent by design: stop them by the pids the agent recorded.
  const vmDirs = (() => {
    try {
      return readdirSync(path.join(agentData, 'vms'));
    } catch {
      return [];
    }
  })();
  for (const id of vmDirs) {
    let pid = 0;
    try {
      pid = Number(readFileSync(path.join(agentData, 'vms', id, 'vmm.pid'), 'utf8'));
    } catch {
      continue;
    }
    if (pid > 1 && (await isProcessAlive(pid))) process.kill(pid, 'SIGKILL');
  }
  rmSync(managerData, { recursive: true, force: true });
  rmSync(agentData, { recursive: true, force: true });
}
