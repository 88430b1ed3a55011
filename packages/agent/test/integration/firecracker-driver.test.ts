import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  balloonStats,
  FirecrackerApiError,
  FirecrackerClient,
  FirecrackerDriver,
  firecrackerFiles,
  patchMmds,
  putMmds,
  setBalloon,
  snapshotCreate,
  updateDriveRateLimiter,
  updateNicRateLimiter,
} from '../../src/vmm/firecracker/index.js';
import type { VmLaunchSpec, VmmHandle, VmPaths } from '../../src/vmm/types.js';
import { FirecrackerSpec } from '../support/firecracker-spec.js';
import type { RecordedRequest } from '../support/firecracker-standin.js';

const STANDIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../support/firecracker-standin-bin');
const oracle = new FirecrackerSpec();
const work = mkdtempSync('/tmp/nqfc-');
const launched: { driver: FirecrackerDriver; handle: VmmHandle }[] = [];
let n = 0;

function vmPaths(): VmPaths {
  const dir = path.join(work, `vm${++n}`);
  return {
    dir,
    pidFile: `${dir}/vmm.pid`,
    controlSocket: `${dir}/api.sock`,
    consoleSocket: `${dir}/console.sock`,
    consoleLog: `${dir}/console.log`,
    vmmLog: `${dir}/vmm.log`,
  };
}

function vmSpec(vmId: string, over: Partial<VmLaunchSpec> = {}): VmLaunchSpec {
  const limiter = {
    bandwidth: { size: 1048576, one_time_burst: 8388608, refill_time: 1000 },
    ops: { size: 500, refill_time: 1000 },
  };
  return {
    vm_id: vmId,
    vcpu: 2,
    mem_mib: 256,
    smt: false,
    cpu_template: 'None',
    kernel_path: '/images/vmlinux',
    initrd_path: '/images/initrd.img',
    boot_args: 'console=ttyS0 reboot=k panic=1',
    drives: [
      {
        drive_id: 'data',
        path: '/images/data.ext4',
        is_root_device: false,
        is_read_only: false,
        cache_type: 'Unsafe',
        io_engine: 'Sync',
      },
      {
        drive_id: 'rootfs',
        path: '/images/root.ext4',
        is_root_device: true,
        is_read_only: false,
        cache_type: 'Writeback',
        io_engine: 'Sync',
        rate_limiter: limiter,
      },
    ],
    nics: [
      {
        iface_id: 'eth0',
        tap: `nqt${n}`,
        mac: '06:00:0a:00:00:02',
        rx_rate_limiter: limiter,
        tx_rate_limiter: limiter,
      },
    ],
    balloon: { amount_mib: 16, deflate_on_oom: true, stats_polling_interval_s: 1 },
    entropy: {},
    vsock: { guest_cid: 3 },
    ...over,
  };
}

async function launch(vmId: string, over: Partial<VmLaunchSpec> = {}, env?: NodeJS.ProcessEnv, paths = vmPaths()) {
  const driver = new FirecrackerDriver({
    binary: STANDIN,
    socketTimeoutMs: 20_000,
    env: env ? { ...process.env, ...env } : undefined,
  });
  const handle = await driver.launch(vmSpec(vmId, over), paths);
  launched.push({ driver, handle });
  return { driver, handle, paths };
}

async function records(paths: VmPaths): Promise<RecordedRequest[]> {
  const text = await readFile(`${paths.controlSocket}.requests.jsonl`, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RecordedRequest);
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
};

afterEach(async () => {
  for (const { driver, handle } of launched.splice(0)) await driver.kill(handle).catch(() => undefined);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('FirecrackerDriver against the spec-checked stand-in executable', () => {
  it('launches detached and configures in Firecracker order, every request valid per the swagger', async () => {
    const started = Date.now();
    const { driver, handle, paths } = await launch('vm-order');
    const launchMs = Date.now() - started;

    const sent = (await records(paths)).filter((r) => r.method !== 'GET');
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual([
      'PUT /logger',
      'PUT /metrics',
      'PUT /machine-config',
      'PUT /boot-source',
      'PUT /drives/rootfs',
      'PUT /drives/data',
      'PUT /network-interfaces/eth0',
      'PUT /balloon',
      'PUT /entropy',
      'PUT /vsock',
      'PUT /actions',
    ]);
    for (const r of sent) {
      expect(r.status, `${r.method} ${r.path}: ${r.fault_message}`).toBe(204);
      expect(oracle.validateRequest(r.method, r.path, r.body).errors).toEqual([]);
    }
    expect(sent.at(-1)?.body).toEqual({ action_type: 'InstanceStart' });
    expect(sent[6]?.body).toMatchObject({
      host_dev_name: expect.stringMatching(/^nqt/),
      guest_mac: '06:00:0a:00:00:02',
    });

    expect(await driver.state(handle)).toBe('running');
    expect(readFileSync(paths.pidFile, 'utf8').trim()).toBe(String(handle.pid));
    // Own session: detached from the agent, so an agent restart cannot take the VM down with it.
    const sid = Number(readFileSync(`/proc/${handle.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[3]);
    expect(sid).toBe(handle.pid);
    const cfg = await new FirecrackerClient(paths.controlSocket).getVmConfig();
    expect(cfg['machine-config']).toMatchObject({ vcpu_count: 2, mem_size_mib: 256 });

    // Serial console: stdout lands in consoleLog, the console FIFO feeds the guest's stdin.
    await until('boot line on the console', () => readFileSync(paths.consoleLog, 'utf8').includes('booted'));
    await appendFile(firecrackerFiles(paths).consoleIn, 'uname -a\n');
    await until('echo on the console', () => readFileSync(paths.consoleLog, 'utf8').includes('echo: uname -a'));
    console.error(`firecracker stand-in launch (spawn → InstanceStart): ${launchMs} ms`);
  });

  it('pauses and resumes through PATCH /vm, and Ctrl-Alt-Del ends the process as reboot=k does', async () => {
    const { driver, handle, paths } = await launch('vm-pause');
    await driver.pause(handle);
    expect(await driver.state(handle)).toBe('paused');
    await driver.resume(handle);
    expect(await driver.state(handle)).toBe('running');
    const patches = (await records(paths)).filter((r) => r.path === '/vm');
    expect(patches.map((r) => [r.body, r.status])).toEqual([
      [{ state: 'Paused' }, 204],
      [{ state: 'Resumed' }, 204],
    ]);
    await driver.ctrlAltDel(handle);
    await until('firecracker to exit', () => !alive(handle.pid));
    expect(await driver.state(handle)).toBe('shutdown');
  });

  it('stop: Ctrl-Alt-Del first; a guest that ignores it is SIGKILLed after the timeout', async () => {
    const polite = await launch('vm-stop');
    let t = Date.now();
    await polite.driver.stop(polite.handle, { timeoutMs: 5000 });
    const politeMs = Date.now() - t;
    expect(alive(polite.handle.pid)).toBe(false);
    expect(existsSync(polite.paths.controlSocket)).toBe(false);

    const stubborn = await launch('vm-stubborn', {}, { FC_STANDIN_CTRL_ALT_DEL: 'ignore' });
    t = Date.now();
    await stubborn.driver.stop(stubborn.handle, { timeoutMs: 400 });
    const stubbornMs = Date.now() - t;
    expect(stubbornMs).toBeGreaterThanOrEqual(400);
    expect(alive(stubborn.handle.pid)).toBe(false);
    expect(
      (await records(stubborn.paths)).some((r) => r.body && JSON.stringify(r.body).includes('SendCtrlAltDel')),
    ).toBe(true);
    console.error(`stop via Ctrl-Alt-Del: ${politeMs} ms; SIGKILL fallback with 400 ms timeout: ${stubbornMs} ms`);
  });

  it('a 400 surfaces as FirecrackerApiError with the fault_message, and post-boot reconfiguration is refused', async () => {
    const { handle, paths } = await launch('vm-faults');
    const client = new FirecrackerClient(paths.controlSocket);
    const err = await client.putMachineConfig({ vcpu_count: 1, mem_size_mib: 128 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirecrackerApiError);
    expect(err).toMatchObject({
      status: 400,
      method: 'PUT',
      path: '/machine-config',
      faultMessage: 'The requested operation is not supported after starting the microVM.',
    });
    await expect(
      client.putDrive({ drive_id: 'late', path_on_host: '/x', is_root_device: false, is_read_only: true }),
    ).rejects.toThrow(/not supported after starting/);
    await expect(setBalloon(handle, 100_000)).rejects.toMatchObject({
      faultMessage: 'Amount of pages requested is too large.',
    });
    await expect(
      client.snapshotCreate({ snapshot_path: `${paths.dir}/s`, mem_file_path: `${paths.dir}/m` }),
    ).rejects.toThrow(/not paused/);
  });

  it('a fault during configuration fails launch with the message and leaves no process behind', async () => {
    const paths = vmPaths();
    const driver = new FirecrackerDriver({ binary: STANDIN, socketTimeoutMs: 20_000 });
    const err = await driver.launch(vmSpec('vm-smt', { smt: true, vcpu: 3 }), paths).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FirecrackerApiError);
    expect((err as FirecrackerApiError).faultMessage).toMatch(/even number when SMT is enabled/);
    expect(existsSync(paths.pidFile)).toBe(false);
    expect(existsSync(paths.controlSocket)).toBe(false);
  });

  it('a VMM that exits before its socket answers fails launch fast with the exit status', async () => {
    const paths = vmPaths();
    const started = Date.now();
    const err = await new FirecrackerDriver({ binary: '/bin/false', socketTimeoutMs: 20_000 })
      .launch(vmSpec('vm-dies'), paths)
      .catch((e: unknown) => e);
    expect(String(err)).toMatch(/firecracker exited with code 1 during launch/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(existsSync(paths.pidFile)).toBe(false);
  });

  it('runtime helpers: rate limiters, balloon, MMDS, snapshot create, then restore with snapshot/load', async () => {
    const { driver, handle, paths } = await launch('vm-helpers');
    await updateDriveRateLimiter(handle, 'rootfs', { bandwidth: { size: 0, refill_time: 0 } });
    await updateNicRateLimiter(handle, 'eth0', { tx: { ops: { size: 100, refill_time: 100 } } });
    await setBalloon(handle, 64);
    const stats = await balloonStats(handle);
    expect(stats).toMatchObject({ target_mib: 64, actual_mib: 64 });
    await putMmds(handle, { latest: { 'meta-data': { 'instance-id': 'vm-helpers', hostname: 'a' } } });
    await patchMmds(handle, { latest: { 'meta-data': { hostname: 'b' } } });
    expect(await new FirecrackerClient(paths.controlSocket).getMmds()).toEqual({
      latest: { 'meta-data': { 'instance-id': 'vm-helpers', hostname: 'b' } },
    });

    const snap = await snapshotCreate(handle, { statePath: `${paths.dir}/snap.state` });
    expect(existsSync(snap.statePath) && existsSync(snap.memPath)).toBe(true);
    expect(await driver.state(handle)).toBe('running');
    const seq = (await records(paths)).filter((r) => r.method !== 'GET').slice(-8);
    expect(seq.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'PATCH /drives/rootfs 204',
      'PATCH /network-interfaces/eth0 204',
      'PATCH /balloon 204',
      'PUT /mmds 204',
      'PATCH /mmds 204',
      'PATCH /vm 204',
      'PUT /snapshot/create 204',
      'PATCH /vm 204',
    ]);
    expect(seq.slice(-3).map((r) => r.body)).toEqual([
      { state: 'Paused' },
      { snapshot_path: snap.statePath, mem_file_path: snap.memPath, snapshot_type: 'Full' },
      { state: 'Resumed' },
    ]);
    for (const r of await records(paths)) expect(oracle.validateRequest(r.method, r.path, r.body).valid).toBe(true);

    const restored = await launch('vm-restored', { incoming_state_path: snap.statePath });
    const sent = (await records(restored.paths)).filter((r) => r.method !== 'GET');
    expect(sent.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      'PUT /logger 204',
      'PUT /metrics 204',
      'PUT /snapshot/load 204',
    ]);
    expect(await restored.driver.state(restored.handle)).toBe('running');
    const cfg = await new FirecrackerClient(restored.paths.controlSocket).getVmConfig();
    expect(cfg['network-interfaces']?.[0]?.host_dev_name).toBe(vmSpec('x').nics[0]?.tap);
  });

  it('adopts a running VMM from a new driver object, and refuses a dead or foreign one', async () => {
    const { handle, paths } = await launch('vm-adopt');
    const fresh = new FirecrackerDriver({ binary: STANDIN });
    const adopted = await fresh.adopt('vm-adopt', paths);
    expect(adopted).toEqual({ vmId: 'vm-adopt', pid: handle.pid, paths });
    expect(await fresh.state(adopted!)).toBe('running');
    expect(await fresh.adopt('vm-other', paths)).toBeNull();
    await fresh.kill(adopted!);
    expect(await new FirecrackerDriver().adopt('vm-adopt', paths)).toBeNull();
  });

  it('removes a stale API socket left by a killed Firecracker and relaunches on the same paths', async () => {
    const first = await launch('vm-stale');
    process.kill(first.handle.pid, 'SIGKILL');
    await until('the killed VMM to go', () => !alive(first.handle.pid));
    expect(existsSync(first.paths.controlSocket)).toBe(true);
    expect(await first.driver.adopt('vm-stale', first.paths)).toBeNull();

    const second = await launch('vm-stale', {}, undefined, first.paths);
    expect(second.handle.pid).not.toBe(first.handle.pid);
    expect(await second.driver.state(second.handle)).toBe('running');
  });

  it('refuses to replace a socket a live Firecracker still answers', async () => {
    const { paths } = await launch('vm-live');
    const driver = new FirecrackerDriver({ binary: STANDIN });
    await expect(driver.launch(vmSpec('vm-live'), paths)).rejects.toThrow(/answered by a running Firecracker/);
  });
});

describe('FirecrackerDriver.availability', () => {
  it('reports unavailable here with the reasons (no binary on PATH; KVM not usable)', async () => {
    const hasVmx = /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
    const res = await new FirecrackerDriver({ pathEnv: process.env.PATH }).availability();
    expect(res.available).toBe(false);
    expect(res.reason).toMatch(/no firecracker binary on PATH/);
    if (!hasVmx) expect(res.reason).toMatch(/KVM|vmx\/svm/);
  });

  it('finds the binary on PATH, reads --version, and is available only with usable KVM', async () => {
    const bin = path.join(work, 'bin');
    execFileSync('mkdir', ['-p', bin]);
    execFileSync('ln', ['-sf', STANDIN, path.join(bin, 'firecracker')]);
    const kvm = path.join(work, 'fake-kvm');
    writeFileSync(kvm, '');
    const noVmx = path.join(work, 'cpuinfo-novmx');
    writeFileSync(noVmx, 'processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n');
    const vmx = path.join(work, 'cpuinfo-vmx');
    writeFileSync(vmx, 'processor\t: 0\nflags\t\t: fpu vmx sse2\n');

    const off = await new FirecrackerDriver({
      pathEnv: `/nonexistent:${bin}`,
      kvmDevice: kvm,
      cpuinfoPath: noVmx,
    }).availability();
    expect(off).toMatchObject({ available: false, version: '1.16.1' });
    expect(off.reason).toMatch(/no vmx\/svm/);
    const on = await new FirecrackerDriver({ pathEnv: bin, kvmDevice: kvm, cpuinfoPath: vmx }).availability();
    expect(on).toEqual({ kind: 'firecracker', available: true, version: '1.16.1', accel: 'kvm' });
    const noKvm = await new FirecrackerDriver({
      pathEnv: bin,
      kvmDevice: `${work}/absent-kvm`,
      cpuinfoPath: vmx,
    }).availability();
    expect(noKvm.reason).toMatch(/absent-kvm is missing/);
  });
});
