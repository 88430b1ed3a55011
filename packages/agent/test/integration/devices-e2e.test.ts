import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { type BuiltApp, buildApp, loadConfig, openPglite } from '@nqvm/manager';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig, type RunningAgent, startAgent } from '../../src/index.ts';
import { isProcessAlive } from '../../src/vmm/qemu/index.ts';
import { demoImages } from '../fixtures/demo-vm.ts';
import { GuestShell } from '../support/guest-shell.ts';

const JOIN = 'join-token-for-devices-e2e-0123456789';
const ADMIN = 'admin-password-for-devices-e2e';
const GATEWAY = '10.216.0.1';
const MIB = 1024 * 1024;
const PASSWORD = 'root-password-devices';
// 1 MiB/s with a 128 KiB bucket, so the initial burst barely moves a multi-MiB measurement.
const ONE_MIB_S = { bandwidth: { size: 131072, refill_time: 125 } };
const FOUR_MIB_S = { bandwidth: { size: 524288, refill_time: 125 } };

interface Problem {
  code: string;
  field?: string;
}

describe('VM devices enforced inside a real guest (manager + agent + QEMU)', () => {
  let manager: BuiltApp;
  let base = '';
  let token = '';
  let agent: RunningAgent;
  let agentData = '';
  let managerData = '';
  let http: Server;
  let shell: GuestShell;
  let vmId = '';
  let guestDevice = '';
  const images: Record<'kernel' | 'initrd' | 'rootfs', string> = { kernel: '', initrd: '', rootfs: '' };

  const api = async <T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> => {
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
  const ok = async <T>(method: string, url: string, body?: unknown, status = 200) => {
    const r = await api<T>(method, url, body);
    expect(r.status, `${method} ${url}: ${JSON.stringify(r.body)}`).toBe(status);
    return r.body;
  };

  beforeAll(async () => {
    execFileSync('ip', ['link', 'set', 'lo', 'up']);
    const demo = await demoImages();
    managerData = await mkdtemp(path.join(tmpdir(), 'nqvm-dev-mgr-'));
    agentData = await mkdtemp(path.join(tmpdir(), 'nqd-'));
    const config = loadConfig({
      NQVM_DATA_DIR: managerData,
      NQVM_ADMIN_PASSWORD: ADMIN,
      NQVM_JOIN_TOKEN: JOIN,
      NQVM_LOG_LEVEL: 'silent',
      NQVM_RECONCILE_INTERVAL_MS: '1000',
      NQVM_HOST_HEARTBEAT_TIMEOUT_S: '5',
      NQVM_NETWORK_CIDR: '10.216.0.0/24',
      NQVM_STOP_TIMEOUT_S: '15',
      FC_BRIDGE: 'nqbr-dev',
    });
    manager = await buildApp(config, { database: await openPglite(new PGlite()), logger: false });
    await manager.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = manager.app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const login = await fetch(`${base}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN }),
    });
    token = ((await login.json()) as { token: string }).token;
    for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
      const res = await fetch(`${base}/v1/images/upload?name=dev-${kind}&kind=${kind}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: readFileSync(demo[kind]),
      });
      expect(res.status).toBe(201);
      images[kind] = ((await res.json()) as { id: string }).id;
    }
    agent = await startAgent(
      loadAgentConfig({
        MANAGER_BASE: base,
        NQVM_JOIN_TOKEN: JOIN,
        AGENT_BIND: '127.0.0.1:19093',
        AGENT_DATA_DIR: agentData,
        AGENT_NAME: 'devices-host',
        AGENT_HEARTBEAT_S: '1',
        PATH: process.env.PATH ?? '/usr/bin:/bin',
      }),
      { logger: pino({ level: 'warn' }) },
    );
    // 16 MiB of data the guest downloads from the host over its rate-limited NIC.
    const blob = Buffer.alloc(16 * MIB, 7);
    http = createServer((_req, res) => res.end(blob));
    await new Promise<void>((resolve) => http.listen(18089, '0.0.0.0', resolve));
  }, 300_000);

  afterAll(async () => {
    shell?.close();
    http?.close();
    await agent?.close();
    await manager?.app.close();
    await rm(managerData, { recursive: true, force: true });
    for (const id of (await readdir(path.join(agentData, 'vms')).catch(() => [] as string[])).filter(
      (n) => n.length === 36,
    )) {
      const pid = Number(await readFile(path.join(agentData, 'vms', id, 'vmm.pid'), 'utf8').catch(() => '0'));
      if (pid > 1 && (await isProcessAlive(pid))) process.kill(pid, 'SIGKILL');
    }
    if (agentData) await rm(agentData, { recursive: true, force: true });
  });

  it('stores devices on a stopped VM, refuses bad input and what this host cannot do', async () => {
    const vm = await ok<{ id: string; state: string }>(
      'POST',
      '/v1/vms',
      {
        name: 'dev-a',
        vcpu: 1,
        mem_mib: 256,
        kernel_image_id: images.kernel,
        initrd_image_id: images.initrd,
        rootfs_image_id: images.rootfs,
        username: 'root',
        password: PASSWORD,
        start: false,
      },
      202,
    );
    vmId = vm.id;
    expect(vm.state).toBe('stopped');
    const drive = await ok<{ item: { guest_device: string }; applied: string }>(
      'POST',
      `/v1/vms/${vmId}/drives`,
      { drive_id: 'data', size_mib: 48, cache_type: 'Writeback', rate_limiter: ONE_MIB_S },
      201,
    );
    expect(drive.applied).toBe('next_boot');
    guestDevice = drive.item.guest_device;
    const nic = await ok<{ applied: string }>('PATCH', `/v1/vms/${vmId}/nics/eth0`, { rx_rate_limiter: ONE_MIB_S });
    expect(nic.applied).toBe('next_boot');
    await ok('PUT', `/v1/vms/${vmId}/balloon`, { amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 1 });
    await ok('PUT', `/v1/vms/${vmId}/entropy`, { rate_limiter: { bandwidth: { size: 4096, refill_time: 100 } } });
    await ok('PUT', `/v1/vms/${vmId}/serial`, { serial_out_path: 'serial.log' });
    await ok('PUT', `/v1/vms/${vmId}/cpu-config`, { template: 'None' });
    await ok('PATCH', `/v1/vms/${vmId}/machine-config`, { vcpu: 1, mem_mib: 256 });

    const bad: [string, string, unknown, number, string, string | undefined][] = [
      ['POST', 'drives', { drive_id: 'Bad Id', size_mib: 8 }, 400, 'validation_failed', undefined],
      ['POST', 'drives', { drive_id: 'both', size_mib: 8, image_id: images.rootfs }, 422, 'drive_source', undefined],
      ['POST', 'drives', { drive_id: 'data', size_mib: 8 }, 409, 'drive_exists', 'body.drive_id'],
      ['POST', 'drives', { drive_id: 'tools', size_mib: 8 }, 422, 'reserved_drive_id', 'body.drive_id'],
      ['PUT', 'vsock', { guest_cid: 3 }, 422, 'unsupported_on_host', 'body.guest_cid'],
      ['PUT', 'serial', { serial_out_path: '/etc/passwd' }, 400, 'validation_failed', undefined],
      ['PUT', 'logger', { level: 'Trace' }, 422, 'unsupported_on_host', 'body.level'],
      ['PATCH', 'machine-config', { huge_pages: '2M' }, 422, 'unsupported_on_host', 'body.huge_pages'],
      ['PATCH', 'machine-config', { track_dirty_pages: true }, 422, 'unsupported_on_host', 'body.track_dirty_pages'],
      [
        'PUT',
        'cpu-config',
        { template: 'T2', cpuid_modifiers: [{ leaf: 1 }] },
        422,
        'unsupported_on_host',
        'body.cpuid_modifiers',
      ],
      [
        'PATCH',
        'nics/eth0',
        { tx_rate_limiter: { ops: { size: 100, refill_time: 1000 } } },
        422,
        'unsupported_on_host',
        'body.tx_rate_limiter.ops',
      ],
      ['POST', 'nics', { mac: '02:00:00:00:00:zz' }, 400, 'validation_failed', undefined],
      [
        'PUT',
        'balloon',
        { amount_mib: 999, deflate_on_oom: false, stats_polling_interval_s: 1 },
        422,
        'balloon_too_large',
        'body.amount_mib',
      ],
    ];
    for (const [method, sub, body, status, code, field] of bad) {
      const r = await api<Problem>(method, `/v1/vms/${vmId}/${sub}`, body);
      expect([method, sub, r.status, r.body.code]).toEqual([method, sub, status, code]);
      if (field) expect(r.body.field).toBe(field);
    }
    // A second NIC on the network: address from IPAM, a given MAC that must be unique.
    const eth1 = await ok<{ item: { iface_id: string; ip: string; mac: string } }>(
      'POST',
      `/v1/vms/${vmId}/nics`,
      { mac: '02:aa:00:00:00:01' },
      201,
    );
    expect(eth1.item.iface_id).toBe('eth1');
    expect(eth1.item.ip).toMatch(/^10\.216\.0\.\d+\/24$/);
    const dup = await api<Problem>('POST', `/v1/vms/${vmId}/nics`, { mac: '02:aa:00:00:00:01' });
    expect([dup.status, dup.body.code, dup.body.field]).toEqual([409, 'mac_taken', 'body.mac']);
    const events = await ok<{ items: { action: string }[] }>('GET', `/v1/events?resource_id=${vmId}&limit=100`);
    expect(events.items.map((e) => e.action)).toEqual(
      expect.arrayContaining(['drive_add', 'nic_update', 'balloon_set', 'entropy_set', 'serial_set', 'nic_add']),
    );
  });

  it('boots with the devices; settings that need a stop answer 409 requires_stop while it runs', async () => {
    await ok('POST', `/v1/vms/${vmId}/start`, undefined, 202);
    await ok('GET', `/v1/vms/${vmId}/wait?state=running&timeout=120`);
    shell = await GuestShell.login(path.join(agentData, 'vms', vmId, 'console.sock'), 'root', PASSWORD);
    for (const [method, sub, body] of [
      ['POST', 'drives', { drive_id: 'more', size_mib: 8 }],
      ['DELETE', 'drives/data', undefined],
      ['POST', 'nics', {}],
      ['PATCH', 'machine-config', { vcpu: 2 }],
      ['PUT', 'cpu-config', { template: 'T2' }],
      ['PUT', 'entropy', {}],
    ] as const) {
      const r = await api<Problem>(method, `/v1/vms/${vmId}/${sub}`, body);
      expect([sub, r.status, r.body.code]).toEqual([sub, 409, 'requires_stop']);
    }
    const serial = await readFile(path.join(agentData, 'vms', vmId, 'serial.log'), 'utf8');
    expect(serial).toContain('login:');
  }, 200_000);

  it('has a virtio entropy device in the guest', async () => {
    const rng = await shell.run('cat /sys/class/misc/hw_random/rng_current; ls /dev/hwrng');
    expect(rng.out).toMatch(/virtio_rng/);
    expect(rng.out).toContain('/dev/hwrng');
  });

  const measure = async (cmd: string, bytes: number) => {
    const r = await shell.run(
      `a=$(cut -d' ' -f1 /proc/uptime); ${cmd}; b=$(cut -d' ' -f1 /proc/uptime); echo "T $a $b"`,
      120_000,
    );
    const m = /T ([\d.]+) ([\d.]+)/.exec(r.out);
    expect(m, r.out).toBeTruthy();
    return bytes / (Number(m![2]) - Number(m![1])) / MIB;
  };

  it('limits the drive to 1 MiB/s (dd in the guest), and raising the limit live raises the rate', async () => {
    const dev = (
      await shell.run('for d in /sys/block/vd*; do [ "$(cat $d/size)" = 98304 ] && basename $d; done')
    ).out.trim();
    expect(`/dev/${dev}`).toBe(guestDevice);
    await shell.run('echo 3 > /proc/sys/vm/drop_caches');
    const slow = await measure(`dd if=/dev/${dev} of=/dev/null bs=64k count=64 2>/dev/null`, 4 * MIB);
    const live = await ok<{ applied: string }>('PATCH', `/v1/vms/${vmId}/drives/data`, { rate_limiter: FOUR_MIB_S });
    expect(live.applied).toBe('live');
    const fast = await measure(`dd if=/dev/${dev} of=/dev/null bs=64k skip=64 count=256 2>/dev/null`, 16 * MIB);
    process.stderr.write(
      `[devices-e2e] drive: ${slow.toFixed(3)} MiB/s at 1 MiB/s, ${fast.toFixed(3)} MiB/s at 4 MiB/s\n`,
    );
    expect(slow).toBeGreaterThan(0.75);
    expect(slow).toBeLessThan(1.25);
    expect(fast).toBeGreaterThan(3);
    expect(fast).toBeLessThan(5);
  }, 120_000);

  it('limits the NIC to 1 MiB/s for a host→guest download', async () => {
    const slow = await measure(`wget -q -O /dev/null http://${GATEWAY}:18089/blob`, 16 * MIB);
    process.stderr.write(`[devices-e2e] nic rx: ${slow.toFixed(3)} MiB/s at 1 MiB/s\n`);
    expect(slow).toBeGreaterThan(0.75);
    expect(slow).toBeLessThan(1.25);
  }, 120_000);

  it('inflating the balloon lowers MemTotal in the guest and the statistics report it', async () => {
    const memTotal = async () => Number(/MemTotal:\s+(\d+)/.exec((await shell.run('cat /proc/meminfo')).out)?.[1]);
    const before = await memTotal();
    const r = await ok<{ applied: string }>('PATCH', `/v1/vms/${vmId}/balloon`, { amount_mib: 64 });
    expect(r.applied).toBe('live');
    const deadline = Date.now() + 60_000;
    let after = before;
    while (before - after < 60 * 1024 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 500));
      after = await memTotal();
    }
    expect(before - after).toBeGreaterThanOrEqual(60 * 1024);
    const stats = await ok<{ actual_mib: number; target_mib: number; total_memory?: number }>(
      'GET',
      `/v1/vms/${vmId}/balloon/statistics`,
    );
    expect(stats.target_mib).toBe(64);
    expect(stats.actual_mib).toBe(64);
    process.stderr.write(`[devices-e2e] balloon: MemTotal ${before} -> ${after} kB; stats ${JSON.stringify(stats)}\n`);
  }, 120_000);
});
