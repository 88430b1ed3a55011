import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, until } from '../../../../test/e2e/support/stack.ts';
import { TEST_NETWORKS } from '../../../../test/support/test-networks.ts';
import { READY_MARKER, tapNameFor } from '../../src/index.ts';
import { isProcessAlive } from '../../src/vmm/qemu/index.ts';
import { lastTick } from '../fixtures/demo-vm.ts';

const GATEWAY = '10.213.0.1';
const IP_A = '10.213.0.2';
const IP_B = '10.213.0.3';
const NET = TEST_NETWORKS.agentE2e;
// Where the agent comes back in the "restarted elsewhere" test; no other test file uses this port.
const MOVED_PORT = 19190;

interface Vm {
  id: string;
  state: string;
  pid: number | null;
  guest_ip: string | null;
  guest_ready_at: string | null;
  nics: { ip: string }[];
}

describe('nqvm-agent end to end: manager + agent + real QEMU microVMs', () => {
  let stack: Stack;
  let agentData = '';

  const api = <T>(method: string, url: string, body?: unknown) => stack.api<T>(method, url, body);
  const getVm = async (id: string) => (await api<Vm>('GET', `/v1/vms/${id}`)).body;
  const waitState = async (id: string, state: string) => {
    const r = await api<Vm>('GET', `/v1/vms/${id}/wait?state=${state}&timeout=120`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  };
  const consoleText = (id: string) => stack.consoleText(id);

  beforeAll(async () => {
    stack = await startStack({
      ...NET,
      env: { NQVM_HOST_HEARTBEAT_TIMEOUT_S: '15', NQVM_STOP_TIMEOUT_S: '15' },
      agentEnv: { AGENT_NAME: 'e2e-host' },
    });
    agentData = stack.agentData;
    expect(stack.imageUploads).toEqual({ kernel: 201, initrd: 201, rootfs: 201 });
  });

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
  let b: Vm;

  it('boots two VMs in parallel that reach running, report through their guest agent and reach each other', async () => {
    const t0 = Date.now();
    // Each guest pings the other's (known before boot) address; a later cold boot repeats it once both are up.
    a = await createVm('e2e-a', `nqvm.tick=1 nqvm.ping=${IP_B}`);
    b = await createVm('e2e-b', `nqvm.ping=${IP_A}`);
    expect([a.nics[0]?.ip, b.nics[0]?.ip]).toEqual([`${IP_A}/24`, `${IP_B}/24`]);
    const [ra, rb] = await Promise.all([waitState(a.id, 'running'), waitState(b.id, 'running')]);
    const running = Date.now() - t0;
    expect(ra.pid).toBeGreaterThan(1);
    expect(rb.pid).toBeGreaterThan(1);
    const ready = await until(
      'both guest agents to report',
      async () => {
        const [ga, gb] = await Promise.all([getVm(a.id), getVm(b.id)]);
        return ga.guest_ready_at && gb.guest_ready_at ? [ga, gb] : undefined;
      },
      120_000,
    );
    const guestReady = Date.now() - t0;
    expect(ready.map((v) => v.guest_ip)).toEqual([IP_A, IP_B]);
    expect(stack.agent.guest.lastReports.get(a.id)?.report.ip).toBe(IP_A);
    process.stderr.write(
      `[agent-e2e] two parallel VMs: create→running ${running} ms, create→guest ready ${guestReady} ms\n`,
    );
    const pinged = await Promise.all(
      [
        [a.id, IP_B],
        [b.id, IP_A],
      ].map(([id, ip]) =>
        until(
          `ping result on ${id}`,
          async () => new RegExp(`nqvm: ping ${ip} (ok|failed)`).exec(await consoleText(id!))?.[1],
          30_000,
        ),
      ),
    );
    // The guest that came up second finds the other already there.
    expect(pinged).toContain('ok');
    // Guest→bridge traffic: the guest agent's report reached the agent on the gateway address.
    expect(stack.agent.guest.lastReports.get(b.id)?.remote).toBe(IP_B);
  }, 180_000);

  it('pause freezes the guest and resume continues it', async () => {
    await until('ticks', async () => lastTick(await consoleText(a.id)) !== undefined, 30_000);
    expect((await api<Vm>('POST', `/v1/vms/${a.id}/pause`)).status).toBe(202);
    const atPause = lastTick(await consoleText(a.id)) ?? 0;
    // An observation window, not a wait: ticks come every 0.2 s when the guest runs.
    await new Promise((r) => setTimeout(r, 1500));
    expect(lastTick(await consoleText(a.id)) ?? 0).toBeLessThanOrEqual(atPause + 1);
    expect((await getVm(a.id)).state).toBe('paused');
    expect((await api<Vm>('POST', `/v1/vms/${a.id}/resume`)).status).toBe(202);
    await until('ticks after resume', async () => (lastTick(await consoleText(a.id)) ?? 0) > atPause + 3, 10_000);
  }, 180_000);

  it('stop then start is a cold boot on the same disk', async () => {
    const disk = path.join(agentData, 'vms', a.id, 'rootfs.ext4');
    const mountCount = () =>
      Number(/Mount count:\s+(\d+)/.exec(execFileSync('dumpe2fs', ['-h', disk], { stdio: 'pipe' }).toString())?.[1]);
    const firstPid = (await getVm(a.id)).pid;
    expect((await api('POST', `/v1/vms/${a.id}/stop`)).status).toBe(202);
    await waitState(a.id, 'stopped');
    expect(await isProcessAlive(firstPid!)).toBe(false);
    expect(linkExists(tapNameFor(a.id, 0))).toBe(false);
    const mountsAfterFirst = mountCount();
    expect(mountsAfterFirst).toBeGreaterThanOrEqual(1);
    execFileSync('debugfs', ['-w', '-R', 'write /etc/hostname /e2e-marker', '--', disk], { stdio: 'pipe' });
    const before = (await consoleText(a.id)).length;
    expect((await api('POST', `/v1/vms/${a.id}/start`)).status).toBe(202);
    const again = await waitState(a.id, 'running');
    expect(again.pid).not.toBe(firstPid);
    await until('a second boot', async () => (await consoleText(a.id)).slice(before).includes(READY_MARKER), 60_000);
    // B is surely up now, so the cold-booted A reaches it.
    await until(
      'A pings B',
      async () => (await consoleText(a.id)).slice(before).includes(`nqvm: ping ${IP_B} ok`),
      30_000,
    );
    expect((await api('POST', `/v1/vms/${a.id}/stop`)).status).toBe(202);
    await waitState(a.id, 'stopped');
    expect(mountCount()).toBe(mountsAfterFirst + 1);
    expect(execFileSync('debugfs', ['-R', 'stat /e2e-marker', '--', disk], { stdio: 'pipe' }).toString()).toMatch(
      /Inode:/,
    );
    expect((await api('POST', `/v1/vms/${a.id}/start`)).status).toBe(202);
    await waitState(a.id, 'running');
  }, 180_000);

  it('a VMM killed with SIGKILL is noticed within 5 s and restarted by the on-failure policy', async () => {
    const pid = (await getVm(b.id)).pid!;
    const before = (await consoleText(b.id)).length;
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const event = await until(
      'a vmm_exited event',
      async () =>
        (
          await api<{ items: { action: string; detail: { signal: string } }[] }>(
            'GET',
            `/v1/events?resource_id=${b.id}&action=vmm_exited`,
          )
        ).body.items[0],
      5_000,
    );
    expect(Date.now() - killedAt).toBeLessThan(5_000);
    expect(event.detail.signal).toBe('unknown');
    const back = await until(
      'B running with a new pid',
      async () => {
        const v = await getVm(b.id);
        return v.state === 'running' && v.pid !== pid ? v : undefined;
      },
      60_000,
    );
    expect(await isProcessAlive(back.pid!)).toBe(true);
    await until(
      'B pings A',
      async () => (await consoleText(b.id)).slice(before).includes(`nqvm: ping ${IP_A} ok`),
      60_000,
    );
  }, 180_000);

  it('a new agent on the same data dir re-adopts running VMs without restarting them', async () => {
    const ids = [a.id, b.id];
    await until(
      'both guests up',
      async () => {
        const texts = await Promise.all(ids.map(consoleText));
        return texts.every((t) => t.trimEnd().length > 0 && t.lastIndexOf(READY_MARKER) >= 0);
      },
      60_000,
    );
    const pids = await Promise.all(ids.map(async (id) => (await getVm(id)).pid));
    const markers = await Promise.all(ids.map(async (id) => (await consoleText(id)).split(READY_MARKER).length));
    await stack.agent.close();
    for (const pid of pids) expect(await isProcessAlive(pid!)).toBe(true);
    const adopted = (await stack.startAgent()).vms.list();
    for (const [i, id] of ids.entries()) {
      expect(adopted.find((s) => s.id === id)).toMatchObject({ state: 'running', pid: pids[i] });
    }
    // The manager may have marked them unknown while no agent answered; the new heartbeat brings them back.
    await Promise.all(ids.map((id) => waitState(id, 'running')));
    // Control works through the new agent, and nothing rebooted.
    const paused = await api('POST', `/v1/vms/${a.id}/pause`);
    expect(paused.status, JSON.stringify(paused.body)).toBe(202);
    expect((await api('POST', `/v1/vms/${a.id}/resume`)).status).toBe(202);
    const views = await Promise.all(ids.map(getVm));
    expect(views.map((v) => [v.state, v.pid])).toEqual(pids.map((p) => ['running', p]));
    expect(await Promise.all(ids.map(async (id) => (await consoleText(id)).split(READY_MARKER).length))).toEqual(
      markers,
    );
  }, 180_000);

  it('an agent restarted on another address is found there: the manager moves the host and drives VMs through it', async () => {
    const hostId = stack.agent.hostId;
    const pids = await Promise.all([a.id, b.id].map(async (id) => (await getVm(id)).pid));
    await stack.agent.close();
    const moved = await stack.startAgent({ AGENT_BIND: `127.0.0.1:${MOVED_PORT}` });
    expect(moved.url).toBe(`https://127.0.0.1:${MOVED_PORT}`);
    expect(moved.hostId).toBe(hostId);
    await until(
      'the manager to learn the new URL',
      async () => (await api<{ addr: string }>('GET', `/v1/hosts/${hostId}`)).body.addr === moved.url,
      30_000,
    );
    const events = await api<{ items: { detail: unknown }[] }>(
      'GET',
      `/v1/events?resource_id=${hostId}&action=addr_changed`,
    );
    expect(events.body.items.map((e) => e.detail)).toEqual([
      { from: `https://127.0.0.1:${NET.agentPort}`, to: moved.url },
    ]);
    // Nothing listens on the old port any more, so the manager's calls below can only reach the new address.
    await expect(fetch(`http://127.0.0.1:${NET.agentPort}/`)).rejects.toThrow();
    // While no agent answered the VMs may have gone unknown; the reconciler brings them back from the new heartbeat.
    await Promise.all([a.id, b.id].map((id) => waitState(id, 'running')));
    const paused = await api('POST', `/v1/vms/${a.id}/pause`);
    expect(paused.status, JSON.stringify(paused.body)).toBe(202);
    await waitState(a.id, 'paused');
    expect((await api('POST', `/v1/vms/${a.id}/resume`)).status).toBe(202);
    await waitState(a.id, 'running');
    expect(await Promise.all([a.id, b.id].map(async (id) => (await getVm(id)).pid))).toEqual(pids);
  }, 180_000);

  it('delete leaves no process, TAP, directory or IP allocation behind', async () => {
    const pids = await Promise.all([a.id, b.id].map(async (id) => (await getVm(id)).pid!));
    for (const id of [a.id, b.id]) expect((await api('DELETE', `/v1/vms/${id}`)).status).toBe(202);
    for (const id of [a.id, b.id])
      await until(`${id} gone`, async () => (await api('GET', `/v1/vms/${id}`)).status === 404, 30_000);
    for (const [i, id] of [a.id, b.id].entries()) {
      expect(await isProcessAlive(pids[i]!)).toBe(false);
      expect(linkExists(tapNameFor(id, 0))).toBe(false);
      expect(existsSync(path.join(agentData, 'vms', id))).toBe(false);
    }
    // The freed address is handed out again; this guest checks it reaches the bridge address.
    const c = await createVm('e2e-c', `nqvm.ping=${GATEWAY}`);
    expect(c.nics[0]?.ip).toBe(`${IP_A}/24`);
    await waitState(c.id, 'running');
    await until(
      'C pings the bridge',
      async () => (await consoleText(c.id)).includes(`nqvm: ping ${GATEWAY} ok`),
      60_000,
    );
    expect((await api('DELETE', `/v1/vms/${c.id}`)).status).toBe(202);
    await until('C gone', async () => (await api('GET', `/v1/vms/${c.id}`)).status === 404, 30_000);
    expect(existsSync(path.join(agentData, 'vms', c.id))).toBe(false);
  });
});

function linkExists(name: string): boolean {
  return (
    readFileSync('/proc/self/net/dev', 'utf8').includes(` ${name}:`) ||
    readFileSync('/proc/self/net/dev', 'utf8').includes(`\n${name}:`)
  );
}
