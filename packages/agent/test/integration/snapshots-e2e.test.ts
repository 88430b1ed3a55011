import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { type BuiltApp, buildApp, loadConfig, openPglite } from '@nqvm/manager';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig, READY_MARKER, type RunningAgent, startAgent } from '../../src/index.ts';
import { isProcessAlive } from '../../src/vmm/qemu/index.ts';
import { demoImages, lastTick } from '../fixtures/demo-vm.ts';

const JOIN = 'join-token-for-snapshot-e2e-0123456789';
const ADMIN = 'admin-password-for-agent-e2e';
const IP_A = '10.214.0.2';
const IP_B = '10.214.0.3';

interface Vm {
  id: string;
  state: string;
  pid: number | null;
  guest_ip: string | null;
  guest_ready_at: string | null;
  nics: { ip: string }[];
}

/** Compares with init's namespace where /proc allows it; otherwise a fresh namespace holds only lo and our own links. */
function inPrivateNetns(): boolean {
  try {
    return readlinkSync('/proc/self/ns/net') !== readlinkSync('/proc/1/ns/net');
  } catch {
    const links = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2);
    return links.map((l) => l.split(':')[0]?.trim() ?? '').every((n) => !n || n === 'lo' || n.startsWith('nq'));
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('snapshots, instances and MMDS with real QEMU microVMs', () => {
  let manager: BuiltApp;
  let managerBase = '';
  let token = '';
  let agent: RunningAgent;
  let agentData = '';
  let managerData = '';
  const images: Record<'kernel' | 'initrd' | 'rootfs', string> = { kernel: '', initrd: '', rootfs: '' };

  const api = async <T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${managerBase}${url}`, {
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
  const getVm = async (id: string) => (await api<Vm>('GET', `/v1/vms/${id}`)).body;
  const waitState = async (id: string, state: string) => {
    const r = await api<Vm>('GET', `/v1/vms/${id}/wait?state=${state}&timeout=120`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  const consoleOf = (id: string) => path.join(agentData, 'vms', id, 'console.log');
  const consoleText = (id: string) => readFile(consoleOf(id), 'utf8').catch(() => '');
  const agentEnv = () => ({
    MANAGER_BASE: managerBase,
    NQVM_JOIN_TOKEN: JOIN,
    AGENT_BIND: '127.0.0.1:19092',
    AGENT_DATA_DIR: agentData,
    AGENT_NAME: 'snap-host',
    AGENT_HEARTBEAT_S: '1',
    PATH: process.env.PATH ?? '/usr/bin:/bin',
  });
  const runAgent = () => startAgent(loadAgentConfig(agentEnv()), { logger: pino({ level: 'warn' }) });

  beforeAll(async () => {
    if (!inPrivateNetns())
      throw new Error('this test creates bridges and TAPs: run under unshare -n (npm test does this)');
    execFileSync('ip', ['link', 'set', 'lo', 'up']);
    const demo = await demoImages();
    managerData = await mkdtemp(path.join(tmpdir(), 'nqvm-snap-mgr-'));
    agentData = await mkdtemp(path.join(tmpdir(), 'nqa-'));
    const config = loadConfig({
      NQVM_DATA_DIR: managerData,
      NQVM_ADMIN_PASSWORD: ADMIN,
      NQVM_JOIN_TOKEN: JOIN,
      NQVM_LOG_LEVEL: 'silent',
      NQVM_RECONCILE_INTERVAL_MS: '1000',
      NQVM_HOST_HEARTBEAT_TIMEOUT_S: '5',
      NQVM_NETWORK_CIDR: '10.214.0.0/24',
      NQVM_STOP_TIMEOUT_S: '15',
      FC_BRIDGE: 'nqbr-snap',
    });
    manager = await buildApp(config, { database: await openPglite(new PGlite()), logger: false });
    await manager.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = manager.app.server.address();
    managerBase = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const login = await fetch(`${managerBase}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN }),
    });
    token = ((await login.json()) as { token: string }).token;
    for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
      const res = await fetch(`${managerBase}/v1/images/upload?name=demo-${kind}&kind=${kind}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: readFileSync(demo[kind]),
      });
      expect(res.status).toBe(201);
      images[kind] = ((await res.json()) as { id: string }).id;
    }
    agent = await runAgent();
  });

  afterAll(async () => {
    await agent?.close();
    await manager?.app.close();
    await rm(managerData, { recursive: true, force: true });
    for (const id of (await readdirSafe(path.join(agentData, 'vms'))).filter((n) => n.length === 36)) {
      const pid = Number(await readFile(path.join(agentData, 'vms', id, 'vmm.pid'), 'utf8').catch(() => '0'));
      if (pid > 1 && (await isProcessAlive(pid))) process.kill(pid, 'SIGKILL');
    }
    if (agentData) await rm(agentData, { recursive: true, force: true });
  });

  const createVm = async (name: string, bootArgs: string) => {
    const r = await api<Vm>('POST', '/v1/vms', {
      name,
      vcpu: 1,
      mem_mib: 256,
      vmm: 'qemu',
      kernel_image_id: images.kernel,
      initrd_image_id: images.initrd,
      rootfs_image_id: images.rootfs,
      boot_args: bootArgs,
      username: 'demo',
      password: 'demo-password',
      restart_policy: 'on-failure',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return r.body;
  };

  let a: Vm;
  let inst: Vm;
  let snapId = '';

  it('snapshots a ticking VM and instantiates it: the instance resumes past the snapshot with a new IP', async () => {
    a = await createVm('snap-a', 'nqvm.tick=1');
    await waitState(a.id, 'running');
    await until('guest agent ready', async () => (await getVm(a.id)).guest_ready_at, 120_000);
    await until('ticks', async () => lastTick(await consoleText(a.id)) !== undefined, 30_000);

    expect((await api('POST', `/v1/vms/${a.id}/snapshots`, { name: 'bad name!' })).status).toBe(400);
    const diff = await api<{ code: string }>('POST', `/v1/vms/${a.id}/snapshots`, { name: 'd', snapshot_type: 'Diff' });
    expect(diff.status).toBe(422);
    expect(diff.body.code).toBe('unsupported_on_host');

    const t0 = Date.now();
    const snap = await api<{ id: string; state: string; state_bytes: number; disk_bytes: number; vm_id: string }>(
      'POST',
      `/v1/vms/${a.id}/snapshots`,
      { name: 's1', snapshot_type: 'Full' },
    );
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    snapId = snap.body.id;
    const atSnap = lastTick(await consoleText(a.id)) ?? 0;
    expect(snap.body).toMatchObject({ state: 'ready', vm_id: a.id });
    expect(snap.body.state_bytes).toBeGreaterThan(0);
    expect(snap.body.disk_bytes).toBeGreaterThan(0);
    process.stderr.write(
      `[snap-e2e] Full snapshot of a 256 MiB guest: ${Date.now() - t0} ms, ${snap.body.state_bytes} B state\n`,
    );
    const snapDir = path.join(agentData, 'snapshots', snapId);
    expect(existsSync(path.join(snapDir, 'state.bin'))).toBe(true);
    expect(existsSync(path.join(snapDir, 'rootfs.ext4'))).toBe(true);
    expect((await getVm(a.id)).state).toBe('running');
    const list = await api<{ items: { id: string }[] }>('GET', `/v1/vms/${a.id}/snapshots`);
    expect(list.body.items.map((s) => s.id)).toEqual([snapId]);

    const t1 = Date.now();
    const r = await api<Vm>('POST', `/v1/snapshots/${snapId}/instantiate`, { name: 'snap-inst' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    inst = r.body;
    expect(inst.nics[0]?.ip).toBe(`${IP_B}/24`);
    await waitState(inst.id, 'running');
    const ready = await until(
      'the instance to report its new address',
      async () => agent.guest.lastReports.get(inst.id)?.report.ip === IP_B && Date.now(),
      60_000,
    );
    process.stderr.write(`[snap-e2e] instantiate → guest agent reporting: ${ready - t1} ms\n`);
    // The restored console continues the source's counter (no reboot: no new boot marker, tick past the snapshot).
    await until(
      'ticks past the snapshot',
      async () => (lastTick(await consoleText(inst.id)) ?? -1) > atSnap + 3,
      30_000,
    );
    expect(await consoleText(inst.id)).not.toContain(READY_MARKER);
    expect((await getVm(inst.id)).guest_ip).toBe(IP_B);
    // Beside the source, which keeps its own address and keeps ticking.
    const srcTick = lastTick(await consoleText(a.id)) ?? 0;
    await until('source still ticking', async () => (lastTick(await consoleText(a.id)) ?? 0) > srcTick + 3, 10_000);
    expect(agent.guest.lastReports.get(a.id)?.report.ip).toBe(IP_A);
  }, 300_000);

  it('MMDS: per-VM data, V2 tokens, bad input refused', async () => {
    expect(
      (
        await api('PUT', `/v1/vms/${a.id}/mmds/config`, {
          version: 'V2',
          ipv4_address: '10.0.0.1',
          network_interfaces: ['eth0'],
        })
      ).status,
    ).toBe(400);
    expect(
      (await api('PUT', `/v1/vms/${a.id}/mmds/config`, { version: 'V3', network_interfaces: ['eth0'] })).status,
    ).toBe(400);
    expect((await api('PUT', `/v1/vms/${a.id}/mmds`, { big: 'x'.repeat(60_000) })).status).toBe(413);
    const cfg = await api('PUT', `/v1/vms/${a.id}/mmds/config`, { version: 'V2', network_interfaces: ['eth0'] });
    expect(cfg.status, JSON.stringify(cfg.body)).toBe(200);
    expect(
      (await api('PUT', `/v1/vms/${a.id}/mmds`, { latest: { 'meta-data': { 'instance-id': 'i-aaa', n: 1 } } })).status,
    ).toBe(200);
    const patched = await api<Record<string, unknown>>('PATCH', `/v1/vms/${a.id}/mmds`, {
      latest: { 'meta-data': { n: null, zone: 'z1' } },
    });
    expect(patched.body).toEqual({ latest: { 'meta-data': { 'instance-id': 'i-aaa', zone: 'z1' } } });
    expect(
      (await api('PUT', `/v1/vms/${inst.id}/mmds`, { latest: { 'meta-data': { 'instance-id': 'i-bbb' } } })).status,
    ).toBe(200);
    // The host itself is no VM: refused.
    const fromHost = await fetch('http://169.254.169.254/latest/meta-data/instance-id').catch(() => undefined);
    expect(fromHost?.status).toBe(403);
  }, 120_000);

  it('the instance survives deleting its source; deleting the snapshot removes its files', async () => {
    expect((await api('DELETE', `/v1/vms/${a.id}`)).status).toBe(202);
    await until('source gone', async () => (await api('GET', `/v1/vms/${a.id}`)).status === 404, 60_000);
    const snap = await api<{ vm_id: string | null; source_spec: { vcpu: number } }>('GET', `/v1/snapshots/${snapId}`);
    expect(snap.body.vm_id).toBeNull();
    expect(snap.body.source_spec.vcpu).toBe(1);
    const t = lastTick(await consoleText(inst.id)) ?? 0;
    await until('instance still ticking', async () => (lastTick(await consoleText(inst.id)) ?? 0) > t + 3, 10_000);
    const log = await fetch(`${managerBase}/v1/logs/tail?source=vm-console&vm_id=${inst.id}&lines=5`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(log.status).toBe(200);
    expect((await log.text()).trim().split('\n').length).toBeLessThanOrEqual(5);
    expect((await api('GET', `/v1/logs/tail?source=/etc/passwd`)).status).toBe(400);
    expect((await api('DELETE', `/v1/snapshots/${snapId}`)).status).toBe(204);
    expect(existsSync(path.join(agentData, 'snapshots', snapId))).toBe(false);
    expect((await api('GET', `/v1/snapshots/${snapId}`)).status).toBe(404);
    expect((await getVm(inst.id)).state).toBe('running');
  }, 180_000);
});

async function readdirSafe(dir: string): Promise<string[]> {
  return (await import('node:fs/promises')).readdir(dir).catch(() => []);
}
