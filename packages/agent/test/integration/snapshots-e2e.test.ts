import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, until } from '../../../../test/e2e/support/stack.ts';
import { TEST_NETWORKS } from '../../../../test/support/test-networks.ts';
import { READY_MARKER } from '../../src/index.ts';
import { lastTick } from '../fixtures/demo-vm.ts';
import { GuestShell } from '../support/guest-shell.ts';

const IP_A = '10.214.0.2';
const IP_B = '10.214.0.3';
const IP_C = '10.214.0.4';

interface Vm {
  id: string;
  state: string;
  pid: number | null;
  guest_ip: string | null;
  guest_ready_at: string | null;
  nics: { ip: string }[];
}

interface Snap {
  id: string;
  state: string;
  snapshot_type: string;
  parent_id: string | null;
  state_bytes: number;
  disk_bytes: number;
  vm_id: string | null;
}

describe('snapshots, instances, clones and MMDS with real QEMU microVMs', () => {
  let stack: Stack;
  const api = <T = Record<string, unknown>>(method: string, url: string, body?: unknown) =>
    stack.api<T>(method, url, body);
  const getVm = async (id: string) => (await api<Vm>('GET', `/v1/vms/${id}`)).body;
  const waitState = async (id: string, state: string) => {
    const r = await api<Vm>('GET', `/v1/vms/${id}/wait?state=${state}&timeout=120`);
    expect(r.status, JSON.stringify(r.status === 200 ? r.body : await getVm(id))).toBe(200);
    return r.body;
  };
  const consoleText = (id: string) => stack.consoleText(id);

  beforeAll(async () => {
    stack = await startStack({
      ...TEST_NETWORKS.snapshotsE2e,
      env: { NQVM_STOP_TIMEOUT_S: '15' },
    });
  }, 300_000);

  afterAll(async () => {
    await stack?.close();
  });

  const createVm = async (name: string, bootArgs: string) => {
    const r = await api<Vm>('POST', '/v1/vms', {
      name,
      vcpu: 1,
      mem_mib: 256,
      vmm: 'qemu',
      kernel_image_id: stack.images.kernel,
      initrd_image_id: stack.images.initrd,
      rootfs_image_id: stack.images.rootfs,
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
  let inst2: Vm;
  let snapId = '';
  let diffId = '';
  let atSnap = 0;

  it('snapshots a ticking VM and instantiates it: the instance resumes past the snapshot with a new IP', async () => {
    a = await createVm('snap-a', 'nqvm.tick=1');
    await waitState(a.id, 'running');
    await until('guest agent ready', async () => (await getVm(a.id)).guest_ready_at, 120_000);
    await until('ticks', async () => lastTick(await consoleText(a.id)) !== undefined, 30_000);

    expect((await api('POST', `/v1/vms/${a.id}/snapshots`, { name: 'bad name!' })).status).toBe(400);
    // A Diff builds on an earlier snapshot: with none yet it is refused, saying so.
    const diff = await api<{ code: string }>('POST', `/v1/vms/${a.id}/snapshots`, { name: 'd', snapshot_type: 'Diff' });
    expect(diff.status).toBe(422);
    expect(diff.body.code).toBe('snapshot_parent_required');

    const t0 = Date.now();
    const snap = await api<{
      id: string;
      state: string;
      state_bytes: number;
      disk_bytes: number;
      vm_id: string;
      operation_id: string;
    }>('POST', `/v1/vms/${a.id}/snapshots`, { name: 's1', snapshot_type: 'Full' });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    snapId = snap.body.id;
    atSnap = lastTick(await consoleText(a.id)) ?? 0;
    expect(snap.body).toMatchObject({ state: 'ready', vm_id: a.id });
    // Saved by a durable `snapshot` operation that ended before the answer.
    const op = await api<{ kind: string; state: string }>('GET', `/v1/operations/${snap.body.operation_id}`);
    expect(op.body).toMatchObject({ kind: 'snapshot', state: 'succeeded' });
    expect(snap.body.state_bytes).toBeGreaterThan(0);
    expect(snap.body.disk_bytes).toBeGreaterThan(0);
    process.stderr.write(
      `[snap-e2e] Full snapshot of a 256 MiB guest: ${Date.now() - t0} ms, ${snap.body.state_bytes} B state\n`,
    );
    const snapDir = path.join(stack.agentData, 'snapshots', snapId);
    expect(existsSync(path.join(snapDir, 'state.bin'))).toBe(true);
    expect(existsSync(path.join(snapDir, 'rootfs.ext4'))).toBe(true);
    expect(existsSync(path.join(snapDir, 'ram.img'))).toBe(true);
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
      async () => stack.agent.guest.lastReports.get(inst.id)?.report.ip === IP_B && Date.now(),
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
    expect(stack.agent.guest.lastReports.get(a.id)?.report.ip).toBe(IP_A);
  }, 300_000);

  it('a Diff snapshot after the Full one stores only changed RAM; its instance continues past the Diff', async () => {
    const full = (await api<Snap>('GET', `/v1/snapshots/${snapId}`)).body;
    const before = lastTick(await consoleText(a.id)) ?? 0;
    await until('more ticks', async () => (lastTick(await consoleText(a.id)) ?? 0) > before + 3, 30_000);
    expect(
      (
        await api('POST', `/v1/vms/${a.id}/snapshots`, {
          name: 'full-with-parent',
          snapshot_type: 'Full',
          parent_id: snapId,
        })
      ).status,
    ).toBe(422);

    const t0 = Date.now();
    const d = await api<Snap>('POST', `/v1/vms/${a.id}/snapshots`, { name: 's2', snapshot_type: 'Diff' });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const atDiff = lastTick(await consoleText(a.id)) ?? 0;
    diffId = d.body.id;
    expect(d.body).toMatchObject({ state: 'ready', snapshot_type: 'Diff', parent_id: snapId, vm_id: a.id });
    expect(d.body.state_bytes).toBeGreaterThan(0);
    expect(d.body.state_bytes).toBeLessThan(full.state_bytes);
    process.stderr.write(
      `[snap-e2e] Diff snapshot: ${Date.now() - t0} ms, ${d.body.state_bytes} B state+RAM (Full: ${full.state_bytes} B)\n`,
    );
    expect(existsSync(path.join(stack.agentData, 'snapshots', diffId, 'ram.map'))).toBe(true);

    const del = await api<{ code: string }>('DELETE', `/v1/snapshots/${snapId}`);
    expect(del.status).toBe(409);
    expect(del.body.code).toBe('has_dependents');
    expect(existsSync(path.join(stack.agentData, 'snapshots', snapId))).toBe(true);

    const r = await api<Vm>('POST', `/v1/snapshots/${diffId}/instantiate`, { name: 'diff-inst' });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    inst2 = r.body;
    expect(inst2.nics[0]?.ip).toBe(`${IP_C}/24`);
    await waitState(inst2.id, 'running');
    await until(
      'the Diff instance to report its new address',
      async () => stack.agent.guest.lastReports.get(inst2.id)?.report.ip === IP_C,
      60_000,
    );
    await until('ticks past the Diff', async () => (lastTick(await consoleText(inst2.id)) ?? -1) > atDiff + 3, 30_000);
    const text = await consoleText(inst2.id);
    // Its RAM is the Diff's (rebuilt over the Full one): the counter starts after the Full snapshot's value.
    expect(Number(/^tick (\d+)/m.exec(text)?.[1])).toBeGreaterThan(atSnap + 2);
    expect(text).not.toContain(READY_MARKER);
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
    const log = await fetch(`${stack.base}/v1/logs/tail?source=vm-console&vm_id=${inst.id}&lines=5`, {
      headers: { authorization: `Bearer ${stack.token}` },
    });
    expect(log.status).toBe(200);
    expect((await log.text()).trim().split('\n').length).toBeLessThanOrEqual(5);
    expect((await api('GET', `/v1/logs/tail?source=/etc/passwd`)).status).toBe(400);
    expect((await api('DELETE', `/v1/snapshots/${diffId}`)).status).toBe(204);
    expect((await api('DELETE', `/v1/snapshots/${snapId}`)).status).toBe(204);
    expect(existsSync(path.join(stack.agentData, 'snapshots', snapId))).toBe(false);
    expect(existsSync(path.join(stack.agentData, 'snapshots', diffId))).toBe(false);
    expect((await api('GET', `/v1/snapshots/${snapId}`)).status).toBe(404);
    expect((await getVm(inst.id)).state).toBe('running');
    const t2 = lastTick(await consoleText(inst2.id)) ?? 0;
    await until(
      'Diff instance still ticking',
      async () => (lastTick(await consoleText(inst2.id)) ?? 0) > t2 + 3,
      10_000,
    );
  }, 180_000);

  it('clones a stopped VM by its disk: a file written before the stop is in the clone, which has its own address', async () => {
    const password = 'root-password-clone';
    const r = await api<Vm>('POST', '/v1/vms', {
      name: 'clone-src',
      vcpu: 1,
      mem_mib: 256,
      vmm: 'qemu',
      kernel_image_id: stack.images.kernel,
      initrd_image_id: stack.images.initrd,
      rootfs_image_id: stack.images.rootfs,
      username: 'root',
      password,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const src = r.body;
    await waitState(src.id, 'running');
    const marker = `nqvm-clone-${Date.now()}`;
    const sh = await GuestShell.login(path.join(stack.agentData, 'vms', src.id, 'console.sock'), 'root', password);
    try {
      expect((await sh.run(`echo ${marker} > /root/clone-marker && sync`)).code).toBe(0);
    } finally {
      sh.close();
    }
    expect((await api('POST', `/v1/vms/${src.id}/stop`)).status).toBe(202);
    await waitState(src.id, 'stopped');

    const c = await api<Vm>('POST', `/v1/vms/${src.id}/clone`, { name: 'clone-dst' });
    expect(c.status, JSON.stringify(c.body)).toBe(202);
    const clone = await waitState(c.body.id, 'running');
    expect(clone.nics[0]?.ip).not.toBe(src.nics[0]?.ip);
    const csh = await GuestShell.login(path.join(stack.agentData, 'vms', clone.id, 'console.sock'), 'root', password);
    try {
      expect((await csh.run('cat /root/clone-marker')).out).toContain(marker);
      expect((await csh.run('hostname')).out).toContain('clone-dst');
    } finally {
      csh.close();
    }
    // Cloning leaves the source as it was.
    expect((await getVm(src.id)).state).toBe('stopped');
  }, 300_000);
});
