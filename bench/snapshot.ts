/**
 * Snapshot benchmark (issue 5): for a 256 MiB guest, cold create → guest agent ready against snapshot
 * instantiate → the instance's guest agent reporting its new address (target ratio ≤ 0.3 under TCG), plus the
 * Full snapshot's save time and size. Diff snapshots are refused on this host (reported as such).
 *
 *   unshare -n sh -c 'ip link set lo up && npx tsx bench/snapshot.ts'
 */
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { buildDemoImages, loadAgentConfig, startAgent, systemRunner } from '@nqvm/agent';
import { buildApp, loadConfig, openPglite } from '@nqvm/manager';
import pino from 'pino';

const ROOT = path.resolve(import.meta.dirname, '..');
const JOIN = 'join-token-for-snapshot-bench-0123456789';
const ADMIN = 'admin-password-for-snapshot-bench';

if (readlinkSync('/proc/self/ns/net') === readlinkSync('/proc/1/ns/net')) {
  console.error(
    'run in a private network namespace: unshare -n sh -c "ip link set lo up && npx tsx bench/snapshot.ts"',
  );
  process.exit(2);
}

async function until<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const demo = await buildDemoImages({
  outDir: path.join(ROOT, '.cache', 'demo-images'),
  cacheDir: path.join(ROOT, '.cache', 'demo-cache'),
  runner: systemRunner,
});
const mgrData = mkdtempSync(path.join(tmpdir(), 'nqvm-sbench-'));
const agentData = mkdtempSync(path.join(tmpdir(), 'nqs-'));
const manager = await buildApp(
  loadConfig({
    NQVM_DATA_DIR: mgrData,
    NQVM_ADMIN_PASSWORD: ADMIN,
    NQVM_JOIN_TOKEN: JOIN,
    NQVM_LOG_LEVEL: 'silent',
    NQVM_NETWORK_CIDR: '10.215.0.0/24',
    FC_BRIDGE: 'nqbr-sbench',
  }),
  { database: await openPglite(new PGlite()), logger: false },
);
await manager.app.listen({ host: '127.0.0.1', port: 0 });
const addr = manager.app.server.address();
const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
const login = await fetch(`${base}/v1/auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ username: 'admin', password: ADMIN }),
});
const token = ((await login.json()) as { token: string }).token;
const api = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
};
const images: Record<string, string> = {};
for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
  const res = await fetch(`${base}/v1/images/upload?name=demo-${kind}&kind=${kind}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body: readFileSync(demo[kind]),
  });
  images[kind] = ((await res.json()) as { id: string }).id;
}
const agent = await startAgent(
  loadAgentConfig({
    MANAGER_BASE: base,
    NQVM_JOIN_TOKEN: JOIN,
    AGENT_BIND: '127.0.0.1:19092',
    AGENT_DATA_DIR: agentData,
    AGENT_NAME: 'sbench',
    AGENT_HEARTBEAT_S: '1',
    PATH: process.env.PATH ?? '/usr/bin:/bin',
  }),
  { logger: pino({ level: 'warn' }) },
);

try {
  type Vm = { id: string; guest_ready_at: string | null; nics: { ip: string }[] };
  const t0 = performance.now();
  const vm = await api<Vm>('POST', '/v1/vms', {
    name: 'sbench-src',
    vcpu: 1,
    mem_mib: 256,
    kernel_image_id: images.kernel,
    initrd_image_id: images.initrd,
    rootfs_image_id: images.rootfs,
    username: 'demo',
    password: 'demo-password',
  });
  await until(async () => (await api<Vm>('GET', `/v1/vms/${vm.id}`)).guest_ready_at, 180_000);
  const cold = performance.now() - t0;

  const t1 = performance.now();
  const snap = await api<{ id: string; state_bytes: number; disk_bytes: number }>(
    'POST',
    `/v1/vms/${vm.id}/snapshots`,
    { name: 'full', snapshot_type: 'Full' },
  );
  const fullMs = performance.now() - t1;
  const diff = await fetch(`${base}/v1/vms/${vm.id}/snapshots`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'diff', snapshot_type: 'Diff' }),
  });

  const t2 = performance.now();
  const inst = await api<Vm>('POST', `/v1/snapshots/${snap.id}/instantiate`, { name: 'sbench-inst' });
  const ip = inst.nics[0]?.ip.split('/')[0];
  await until(async () => agent.guest.lastReports.get(inst.id)?.report.ip === ip, 120_000);
  const warm = performance.now() - t2;

  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  process.stdout.write(
    [
      `cold create → guest agent ready:          ${cold.toFixed(0)} ms`,
      `instantiate → guest agent on its new IP:  ${warm.toFixed(0)} ms`,
      `ratio:                                    ${(warm / cold).toFixed(2)} (target ≤ 0.3)`,
      `Full snapshot (256 MiB guest), API call:  ${fullMs.toFixed(0)} ms, state ${mib(snap.state_bytes)}, disk ${mib(snap.disk_bytes)} allocated`,
      `Diff snapshot:                            refused (${diff.status}) — ${((await diff.json()) as { code: string }).code}`,
      '',
    ].join('\n'),
  );
} finally {
  for (const v of (await api<{ items: { id: string }[] }>('GET', '/v1/vms')).items)
    await api('DELETE', `/v1/vms/${v.id}`).catch(() => undefined);
  await manager.services.vms.idle();
  await agent.close();
  await manager.app.close();
  rmSync(mgrData, { recursive: true, force: true });
  rmSync(agentData, { recursive: true, force: true });
}
