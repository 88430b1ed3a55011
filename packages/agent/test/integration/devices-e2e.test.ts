import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, until } from '../../../../test/e2e/support/stack.ts';
import { TEST_NETWORKS } from '../../../../test/support/test-networks.ts';
import { GuestShell } from '../support/guest-shell.ts';

const GATEWAY = '10.216.0.1';
const MIB = 1024 * 1024;
const PASSWORD = 'root-password-devices';
// 1 MiB/s with a 128 KiB bucket, so the initial burst barely moves a multi-MiB measurement.
const ONE_MIB_S = { bandwidth: { size: 131072, refill_time: 125 } };
const FOUR_MIB_S = { bandwidth: { size: 524288, refill_time: 125 } };
// virtio-rng hands out at most 1024 bytes per 500 ms window: 2 KiB/s, well below what a TCG guest can pull.
const RNG_LIMIT = { bandwidth: { size: 1024, refill_time: 500 } };

interface Problem {
  code: string;
  field?: string;
}

/** Byte counts and first/last arrival times of what guests upload to a plain TCP sink. */
interface Upload {
  bytes: number;
  first: number;
  last: number;
}

describe('VM devices enforced inside a real guest (manager + agent + QEMU)', () => {
  let s: Stack;
  let http: Server;
  let sink: TcpServer;
  const uploads: Upload[] = [];
  let shell: GuestShell;
  let vmId = '';
  let guestDevice = '';
  let eth1Ip = '';
  let agentData = '';
  let images: Stack['images'];

  const api = <T>(method: string, url: string, body?: unknown) => s.api<T>(method, url, body);
  const ok = async <T>(method: string, url: string, body?: unknown, status = 200) => {
    const r = await api<T>(method, url, body);
    expect(r.status, `${method} ${url}: ${JSON.stringify(r.body)}`).toBe(status);
    return r.body;
  };

  beforeAll(async () => {
    s = await startStack({
      ...TEST_NETWORKS.devicesE2e,
      env: { NQVM_STOP_TIMEOUT_S: '15' },
    });
    agentData = s.agentData;
    images = s.images;
    // 16 MiB of data the guest downloads from the host over its rate-limited NIC.
    const blob = Buffer.alloc(16 * MIB, 7);
    http = createHttpServer((_req, res) => res.end(blob));
    await new Promise<void>((resolve) => http.listen(18089, '0.0.0.0', resolve));
    sink = createTcpServer((c) => {
      const u: Upload = { bytes: 0, first: 0, last: 0 };
      uploads.push(u);
      c.on('data', (d: Buffer) => {
        u.last = performance.now();
        if (!u.bytes) u.first = u.last;
        u.bytes += d.length;
        // Closing at the end lets the guest's nc exit, whether or not it waits for the far side.
        if (u.bytes >= 16 * MIB) c.end();
      });
      c.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => sink.listen(18090, '0.0.0.0', resolve));
    // Guests reach only the host services meant for them: these two test servers are made so.
    await s.agent.allowGuestService(GATEWAY, 18089);
    await s.agent.allowGuestService(GATEWAY, 18090);
  }, 300_000);

  afterAll(async () => {
    shell?.close();
    http?.close();
    sink?.close();
    await s?.close();
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
    await ok('PUT', `/v1/vms/${vmId}/entropy`, { rate_limiter: RNG_LIMIT });
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
    eth1Ip = eth1.item.ip.split('/')[0]!;
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

  it("configures the second NIC's address in the guest at boot; it answers ping from the host bridge", async () => {
    const eth1 = await shell.run(
      'for d in /sys/class/net/*; do [ "$(cat $d/address)" = 02:aa:00:00:00:01 ] && ip -4 addr show dev $(basename $d); done',
    );
    expect(eth1.out).toContain(`inet ${eth1Ip}/24`);
    const ping = spawnSync('busybox', ['ping', '-c', '3', '-W', '5', '-I', 'nqbr-dev', eth1Ip], { encoding: 'utf8' });
    expect(ping.status, `${ping.error ?? ''} ${ping.stdout} ${ping.stderr}`).toBe(0);
    expect(ping.stdout).toMatch(/3 packets received/);
    // The reply really came from the second NIC: the host learnt eth1's MAC for its address.
    const neigh = spawnSync('ip', ['neigh', 'show', eth1Ip, 'dev', 'nqbr-dev'], { encoding: 'utf8' });
    expect(neigh.stdout).toContain('02:aa:00:00:00:01');
  });

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
    // The serial console also carries kernel messages: take the line that names a disk.
    const out = (await shell.run('for d in /sys/block/vd*; do [ "$(cat $d/size)" = 98304 ] && basename $d; done')).out;
    const dev = /^vd[a-z]+$/m.exec(out.replace(/\r/g, ''))?.[0];
    expect(`/dev/${dev}`).toBe(guestDevice);
    await shell.run('echo 3 > /proc/sys/vm/drop_caches');
    const slow = await measure(`dd if=/dev/${dev} of=/dev/null bs=64k count=64 2>/dev/null`, 4 * MIB);
    const live = await ok<{ applied: string; operation_id: string }>('PATCH', `/v1/vms/${vmId}/drives/data`, {
      rate_limiter: FOUR_MIB_S,
    });
    expect(live.applied).toBe('live');
    // Applied live by a durable `device` operation, ended before the answer.
    const op = await ok<{ kind: string; state: string; reason: string }>('GET', `/v1/operations/${live.operation_id}`);
    expect(op).toMatchObject({ kind: 'device', state: 'succeeded', reason: 'drive_update applied live' });
    const fast = await measure(`dd if=/dev/${dev} of=/dev/null bs=64k skip=64 count=256 2>/dev/null`, 16 * MIB);
    process.stderr.write(
      `[devices-e2e] drive: ${slow.toFixed(3)} MiB/s at 1 MiB/s, ${fast.toFixed(3)} MiB/s at 4 MiB/s\n`,
    );
    expect(slow).toBeGreaterThan(0.75);
    expect(slow).toBeLessThan(1.25);
    expect(fast).toBeGreaterThan(3);
    expect(fast).toBeLessThan(5);
  }, 120_000);

  it('limits the entropy device to its rate: /dev/hwrng gives about 2 KiB/s', async () => {
    const bytes = 24 * 1024;
    const rate = await measure(`head -c ${bytes} /dev/hwrng > /dev/null`, bytes);
    const limit = (RNG_LIMIT.bandwidth.size * 1000) / RNG_LIMIT.bandwidth.refill_time / MIB;
    process.stderr.write(`[devices-e2e] entropy: ${((rate * MIB) / 1024).toFixed(1)} KiB/s at 2 KiB/s\n`);
    expect(rate).toBeGreaterThan(limit * 0.75);
    expect(rate).toBeLessThan(limit * 1.25);
  }, 120_000);

  it('limits the NIC to 1 MiB/s for a host→guest download', async () => {
    const slow = await measure(`wget -q -O /dev/null http://${GATEWAY}:18089/blob`, 16 * MIB);
    process.stderr.write(`[devices-e2e] nic rx: ${slow.toFixed(3)} MiB/s at 1 MiB/s\n`);
    expect(slow).toBeGreaterThan(0.75);
    expect(slow).toBeLessThan(1.25);
  }, 120_000);

  it('limits the NIC to 1 MiB/s for a guest→host upload, set live', async () => {
    const live = await ok<{ applied: string }>('PATCH', `/v1/vms/${vmId}/nics/eth0`, { tx_rate_limiter: ONE_MIB_S });
    expect(live.applied).toBe('live');
    const before = uploads.length;
    // Node from the guest tools drive sends in 64 KiB writes: busybox nc's 1 KiB copy loop is slower than 1 MiB/s
    // under TCG, so it would measure the guest's CPU rather than the limit.
    const send = `const s=require('net').connect(18090,'${GATEWAY}',()=>{const b=Buffer.alloc(65536,7);let n=0;const go=()=>{while(n<256){n++;if(!s.write(b))return s.once('drain',go)}s.end()};go()})`;
    const r = await shell.run(
      `N=/opt/nqvm/node; $N/ld-linux-x86-64.so.2 --library-path $N $N/node -e "${send}"`,
      120_000,
    );
    const u = await until(
      'all 16 MiB at the host',
      async () => uploads.slice(before).find((x) => x.bytes >= 16 * MIB),
      60_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; guest: ${r.out}; got ${uploads.slice(before).map((x) => x.bytes)}`);
    });
    const rate = u.bytes / ((u.last - u.first) / 1000) / MIB;
    process.stderr.write(`[devices-e2e] nic tx: ${rate.toFixed(3)} MiB/s at 1 MiB/s\n`);
    expect(rate).toBeGreaterThan(0.75);
    expect(rate).toBeLessThan(1.25);
  }, 150_000);

  it('inflating the balloon lowers MemTotal in the guest and the statistics report it', async () => {
    const memTotal = async () => Number(/MemTotal:\s+(\d+)/.exec((await shell.run('cat /proc/meminfo')).out)?.[1]);
    const before = await memTotal();
    const r = await ok<{ applied: string }>('PATCH', `/v1/vms/${vmId}/balloon`, { amount_mib: 64 });
    expect(r.applied).toBe('live');
    const deadline = Date.now() + 120_000;
    let after = before;
    while (before - after < 60 * 1024 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 500));
      after = await memTotal();
    }
    expect(before - after).toBeGreaterThanOrEqual(60 * 1024);
    // The balloon reaches its target a little after the guest's MemTotal shows most of it.
    const stats = await until(
      'the balloon statistics to report the full 64 MiB',
      async () => {
        const st = await ok<{ actual_mib: number; target_mib: number; total_memory?: number }>(
          'GET',
          `/v1/vms/${vmId}/balloon/statistics`,
        );
        return st.actual_mib === 64 && st;
      },
      60_000,
    );
    expect(stats.target_mib).toBe(64);
    process.stderr.write(`[devices-e2e] balloon: MemTotal ${before} -> ${after} kB; stats ${JSON.stringify(stats)}\n`);
  }, 240_000);

  it('boots without the entropy and balloon devices once they are removed (DELETE needs the VM stopped)', async () => {
    // virtio device ids: 2 block, 4 entropy (virtio-rng), 5 balloon.
    const virtioIds = async () => (await shell.run('cat /sys/bus/virtio/devices/*/device')).out;
    expect(await virtioIds()).toMatch(/0x0004[\s\S]*0x0005|0x0005[\s\S]*0x0004/);
    for (const sub of ['entropy', 'balloon']) {
      const r = await api<Problem>('DELETE', `/v1/vms/${vmId}/${sub}`);
      expect([sub, r.status, r.body.code, r.body.field]).toEqual([sub, 409, 'requires_stop', sub]);
    }
    shell.close();
    await ok('POST', `/v1/vms/${vmId}/stop`, undefined, 202);
    await ok('GET', `/v1/vms/${vmId}/wait?state=stopped&timeout=120`);
    await ok('DELETE', `/v1/vms/${vmId}/entropy`, undefined, 204);
    await ok('DELETE', `/v1/vms/${vmId}/balloon`, undefined, 204);
    const again = await api<Problem>('DELETE', `/v1/vms/${vmId}/entropy`);
    expect([again.status, again.body.code]).toEqual([404, 'device_not_set']);
    expect(await ok('GET', `/v1/vms/${vmId}/config`)).toMatchObject({ entropy: null, balloon: null });
    await ok('POST', `/v1/vms/${vmId}/start`, undefined, 202);
    await ok('GET', `/v1/vms/${vmId}/wait?state=running&timeout=120`);
    shell = await GuestShell.login(path.join(agentData, 'vms', vmId, 'console.sock'), 'root', PASSWORD);
    const ids = await virtioIds();
    expect(ids).toContain('0x0002');
    expect(ids).not.toContain('0x0004');
    expect(ids).not.toContain('0x0005');
    expect((await shell.run('cat /sys/class/misc/hw_random/rng_current 2>&1')).out).not.toMatch(/virtio_rng/);
  }, 300_000);
});
