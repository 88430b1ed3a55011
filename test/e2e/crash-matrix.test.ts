import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { DEMO_FILES, jsonClient, kill, links, type Proc, startProgram, tapOf, vmmsOf } from './support/processes.ts';
import { inPrivateNetns, until } from './support/stack.ts';

const NET = TEST_NETWORKS.crashMatrix;
const BASE = `http://127.0.0.1:${NET.managerPort}`;
const PASSWORD = 'crash-matrix-admin-password';
const TERMINAL = ['succeeded', 'failed', 'cancelled'];

interface Vm {
  id: string;
  state: string;
  guest_ready_at: string | null;
  last_error: string | null;
  operation_id?: string;
}
interface Operation {
  id: string;
  kind: string;
  state: string;
  attempts: number;
  reason: string | null;
}
interface Snapshot {
  id: string;
  state: string;
  state_bytes: number;
}

/**
 * Issue 11's crash matrix for the manager and the agent as separate processes (as on a multi-host install; `nqvm up`,
 * both in one process, is crash-nqvm-up's): each is killed with SIGKILL at a point of an operation, restarted, and
 * within 60 s every VM settles, running ⇔ exactly one VMM, no duplicate VMM, every operation ends with a reason, the
 * events tell it once, and deleting the VMs leaves no VMM, TAP, directory or snapshot file behind.
 */
describe('crash matrix: manager and agent in separate processes, each killed with SIGKILL mid-operation', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nqvm-crash-matrix-'));
  // Each VMM runs as a user of its own, which must pass through here to its VM's directory.
  chmodSync(dir, 0o755);
  const agentData = path.join(dir, 'agent');
  let manager: Proc | undefined;
  let agent: Proc | undefined;
  let token = '';
  // The agent's join token, made by the admin through the API (single use: a restarted agent keeps its identity).
  let join = '';
  const api = jsonClient(BASE, () => token);
  const images = { kernel: '', initrd: '', rootfs: '' };
  let vmId = '';

  async function startManager(): Promise<void> {
    const m = startProgram('manager', {
      NQVM_DATA_DIR: path.join(dir, 'manager'),
      MANAGER_BIND: `127.0.0.1:${NET.managerPort}`,
      NQVM_ADMIN_PASSWORD: PASSWORD,
      NQVM_NETWORK_CIDR: NET.cidr,
      FC_BRIDGE: NET.bridge,
      NQVM_LOG_LEVEL: 'warn',
      NQVM_RECONCILE_INTERVAL_MS: '1000',
    });
    manager = m;
    await until(
      'the manager to listen',
      async () => m.output().includes('listening') || m.proc.exitCode !== null,
      120_000,
    );
    expect(m.proc.exitCode, m.output()).toBeNull();
    token = '';
    const login = await api<{ token: string }>('POST', '/v1/auth/login', { username: 'admin', password: PASSWORD });
    expect(login.status).toBe(200);
    token = login.body.token;
  }

  async function startAgent(): Promise<void> {
    const a = startProgram('agent', {
      MANAGER_BASE: BASE,
      NQVM_JOIN_TOKEN: join,
      AGENT_DATA_DIR: agentData,
      AGENT_BIND: `127.0.0.1:${NET.agentPort}`,
      AGENT_HEARTBEAT_S: '1',
      FC_BRIDGE: NET.bridge,
      NQVM_LOG_LEVEL: 'warn',
    });
    agent = a;
    await until(
      'the agent to be ready',
      async () => a.output().includes('nqvm-agent ready') || a.proc.exitCode !== null,
      120_000,
    );
    expect(a.proc.exitCode, a.output()).toBeNull();
  }

  const vm = async (id: string) => (await api<Vm>('GET', `/v1/vms/${id}`)).body;
  const operations = async (id: string) =>
    (await api<{ items: Operation[] }>(`GET`, `/v1/operations?vm_id=${id}`)).body.items;
  const eventsOf = async (id: string, action: string) =>
    (
      await api<{ items: { action: string; detail: Record<string, unknown> }[] }>(
        'GET',
        `/v1/events?resource_id=${id}&action=${action}`,
      )
    ).body.items;

  beforeAll(async () => {
    expect(inPrivateNetns()).toBe(true);
    for (const f of Object.values(DEMO_FILES))
      if (!existsSync(f)) throw new Error(`${f} missing: npm test builds the demo images before isolating the network`);
    await startManager();
    const made = await api<{ token: string }>('POST', '/v1/join-tokens', { description: 'crash matrix agent' });
    expect(made.status).toBe(201);
    join = made.body.token;
    await startAgent();
    await until(
      'the agent to be healthy',
      async () => (await api<{ items: { health: string }[] }>('GET', '/v1/hosts')).body.items[0]?.health === 'healthy',
      30_000,
    );
    for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
      const res = await fetch(`${BASE}/v1/images/upload?name=crash-${kind}&kind=${kind}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: readFileSync(DEMO_FILES[kind]),
      });
      expect(res.status).toBe(201);
      images[kind] = ((await res.json()) as { id: string }).id;
    }
  }, 300_000);

  afterAll(async () => {
    for (const p of [manager, agent]) if (p) await kill(p, 'SIGTERM');
    // VMMs outlive their agent by design: stop what this test left.
    const vms = path.join(agentData, 'vms');
    for (const id of existsSync(vms) ? readdirSync(vms) : [])
      for (const pid of vmmsOf(id)) process.kill(pid, 'SIGKILL');
    spawnSync('ip', ['link', 'del', NET.bridge], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('the agent killed mid-boot (its VMM started) and restarted: the boot finishes with exactly one VMM', async () => {
    const created = await api<Vm>('POST', '/v1/vms', {
      name: 'crash-boot',
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: images.kernel,
      initrd_image_id: images.initrd,
      rootfs_image_id: images.rootfs,
    });
    expect(created.status).toBe(202);
    vmId = created.body.id;
    // Mid-boot: QEMU runs (held while its disk is prepared, or booting), the manager still waits for the answer.
    await until('the VMM to start', async () => vmmsOf(vmId).length > 0, 60_000);
    expect((await vm(vmId)).state).toBe('starting');
    await kill(agent!);
    await startAgent();

    const restartedAt = Date.now();
    const settled = await until(
      'the VM to settle and its operations to end',
      async () => {
        const v = await vm(vmId);
        const ops = await operations(vmId);
        return ['running', 'stopped', 'error'].includes(v.state) && ops.every((o) => TERMINAL.includes(o.state))
          ? { v, ops }
          : false;
      },
      60_000,
    );
    process.stderr.write(
      `[crash-matrix] agent killed mid-boot: settled ${Date.now() - restartedAt} ms after restart\n`,
    );
    expect(settled.v.state, settled.v.last_error ?? '').toBe('running');
    expect(vmmsOf(vmId)).toHaveLength(1);
    expect(links()).toContain(tapOf(vmId));
    expect(settled.ops.map((o) => `${o.kind}:${o.state}`)).toEqual(['create:succeeded']);
    for (const o of settled.ops) expect(o.reason).toBeTruthy();
    expect(await eventsOf(vmId, 'boot')).toHaveLength(1);
  }, 240_000);

  /** Starts a snapshot save, runs `crash` once the host is writing it, and returns what settled afterwards. */
  async function saveCutBy(name: string, crash: () => Promise<void>) {
    await until('the guest agent to be ready', async () => (await vm(vmId)).guest_ready_at, 120_000);
    // The request may die with the manager; the operation goes on.
    const asked = api<Snapshot>('POST', `/v1/vms/${vmId}/snapshots`, { name }).catch((e: unknown) => e);
    const sid = await until(
      'the save to begin on the host',
      async () => {
        const s = (await api<{ items: Snapshot[] }>('GET', `/v1/vms/${vmId}/snapshots`)).body.items[0];
        return s?.state === 'creating' && existsSync(path.join(agentData, 'snapshots', s.id)) && s.id;
      },
      30_000,
    );
    await crash();
    const restartedAt = Date.now();
    const settled = await until(
      'the snapshot saved and every operation ended',
      async () => {
        const s = (await api<Snapshot>('GET', `/v1/snapshots/${sid}`)).body;
        const ops = await operations(vmId);
        return s.state !== 'creating' && ops.every((o) => TERMINAL.includes(o.state)) ? { s, ops } : false;
      },
      60_000,
    );
    process.stderr.write(`[crash-matrix] ${name}: settled ${Date.now() - restartedAt} ms after the restart\n`);
    expect(settled.s.state, JSON.stringify(settled.ops)).toBe('ready');
    expect(settled.s.state_bytes).toBeGreaterThan(0);
    const save = settled.ops.find((o) => o.kind === 'snapshot');
    expect(save).toMatchObject({ state: 'succeeded' });
    expect(save?.attempts).toBeGreaterThanOrEqual(2);
    expect(save?.reason).toMatch(/^saved/);
    expect((await vm(vmId)).state).toBe('running');
    expect(vmmsOf(vmId)).toHaveLength(1);
    expect((await eventsOf(vmId, 'snapshot')).filter((e) => e.detail.snapshot_id === sid)).toHaveLength(1);
    for (const f of ['state.bin', 'rootfs.ext4', 'ram.img', 'meta.json'])
      expect(existsSync(path.join(agentData, 'snapshots', sid, f)), f).toBe(true);
    return asked;
  }

  it('the manager killed during a snapshot save: restarted, it resumes the save; one VMM, the VM running, one snapshot', async () => {
    const asked = await saveCutBy('manager-cut', async () => {
      await kill(manager!);
      await startManager();
    });
    expect(asked).toBeInstanceOf(Error);
  }, 240_000);

  it('the agent killed during a snapshot save: restarted, it resumes the VM its save held paused and the save is retried', async () => {
    const asked = (await saveCutBy('agent-cut', async () => {
      await kill(agent!);
      await startAgent();
    })) as { status: number; body: Snapshot };
    const resumed = agent!.output().includes('resumed a VM an interrupted snapshot save left paused');
    process.stderr.write(
      `[crash-matrix] agent-cut: the restarted agent resumed a VM the save held paused: ${resumed}\n`,
    );
    // The manager lived: the request waited for the retried operation and answered with the saved snapshot.
    expect(asked.status).toBe(201);
    expect(asked.body.state).toBe('ready');
    const guest = await until(
      'the guest agent to report again',
      async () => {
        const v = await vm(vmId);
        return v.state === 'running' && v;
      },
      30_000,
    );
    expect(guest.state).toBe('running');
  }, 240_000);

  it('deleting the snapshots and the VM leaves no snapshot file, VMM, TAP or directory behind', async () => {
    const sids = (await api<{ items: Snapshot[] }>('GET', `/v1/vms/${vmId}/snapshots`)).body.items.map((s) => s.id);
    expect(sids).toHaveLength(2);
    for (const sid of sids) {
      expect((await api('DELETE', `/v1/snapshots/${sid}`)).status).toBe(204);
      expect(existsSync(path.join(agentData, 'snapshots', sid))).toBe(false);
    }
    const del = await api<Vm>('DELETE', `/v1/vms/${vmId}`);
    expect(del.status).toBe(202);
    await until('the VM to be gone', async () => (await api('GET', `/v1/vms/${vmId}`)).status === 404, 60_000);
    await until('its VMM to be gone', async () => vmmsOf(vmId).length === 0, 10_000);
    expect(links()).not.toContain(tapOf(vmId));
    expect(existsSync(path.join(agentData, 'vms', vmId))).toBe(false);
    const ops = await operations(vmId);
    expect(ops.every((o) => TERMINAL.includes(o.state) && o.reason)).toBe(true);
    expect(ops.map((o) => o.kind)).toEqual([
      'delete',
      'snapshot_delete',
      'snapshot_delete',
      'snapshot',
      'snapshot',
      'create',
    ]);
  }, 120_000);
});
