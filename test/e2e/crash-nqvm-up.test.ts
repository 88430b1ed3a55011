import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { jsonClient, kill, links, seedDemoImages, startNqvmUp, tapOf, vmmsOf } from './support/processes.ts';
import { inPrivateNetns, until } from './support/stack.ts';

const NET = TEST_NETWORKS.crashNqvmUp;
const BASE = `http://127.0.0.1:${NET.managerPort}`;
const PASSWORD = 'crash-test-admin-password';
const TERMINAL = ['succeeded', 'failed', 'cancelled'];

const startUp = (dataDir: string) =>
  startNqvmUp(dataDir, NET, { NQVM_ADMIN_PASSWORD: PASSWORD, NQVM_RECONCILE_INTERVAL_MS: '2000' });

/**
 * Issue 11's reproduction: `nqvm up` (manager and agent in one process) killed with SIGKILL 0.3 s after five creates
 * were accepted, then started again on the same data. Within 60 s every VM settles, running ⇔ exactly one VMM, no
 * duplicate VMM, no TAP or directory of a VM that is not running, every operation ends with a reason. Then the same
 * for five deletes: everything of the VMs is gone.
 */
describe('crash: nqvm up killed with SIGKILL mid-operation, restarted on the same data', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'nqvm-crash-'));
  // Each VMM runs as a user of its own, which must pass through the data dir to its VM's directory.
  chmodSync(dataDir, 0o755);
  const agentVms = path.join(dataDir, 'agent', 'vms');
  let current: ReturnType<typeof startUp> | undefined;
  let token = '';

  const api = jsonClient(BASE, () => token);

  async function up(): Promise<void> {
    current = startUp(dataDir);
    const u = current;
    await until(
      'nqvm up to be ready',
      async () => u.output().includes('nqvm is up') || u.proc.exitCode !== null,
      120_000,
    );
    expect(u.proc.exitCode, u.output()).toBeNull();
    token = '';
    const login = await api<{ token: string }>('POST', '/v1/auth/login', { username: 'admin', password: PASSWORD });
    expect(login.status).toBe(200);
    token = login.body.token;
  }

  const kill9 = () => kill(current!);

  afterAll(async () => {
    if (current) await kill(current, 'SIGTERM');
    // VMMs outlive their agent by design: stop what this test left.
    for (const id of existsSync(agentVms) ? readdirSync(agentVms) : [])
      for (const pid of vmmsOf(id)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('five creates cut 0.3 s after they were accepted all converge to running, each with exactly one VMM', async () => {
    expect(inPrivateNetns()).toBe(true);
    seedDemoImages(dataDir);
    await up();
    await until(
      'the local agent to be healthy',
      async () => (await api<{ items: { health: string }[] }>('GET', '/v1/hosts')).body.items[0]?.health === 'healthy',
      30_000,
    );
    const images = (await api<{ items: { id: string; name: string }[] }>('GET', '/v1/images')).body.items;
    const image = (name: string) => images.find((i) => i.name === name)?.id;

    const created = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        api<{ id: string; state: string; operation_id: string }>('POST', '/v1/vms', {
          name: `crash-${i}`,
          vcpu: 1,
          mem_mib: 256,
          kernel_image_id: image('demo-kernel'),
          initrd_image_id: image('demo-initrd'),
          rootfs_image_id: image('demo-rootfs'),
        }),
      ),
    );
    for (const c of created) {
      expect(c.status).toBe(202);
      expect(c.body.operation_id).toBeTruthy();
    }
    const ids = created.map((c) => c.body.id);
    // The scenario as reported: the process dies 0.3 s after the API answered.
    await new Promise((r) => setTimeout(r, 300));
    await kill9();

    const restartedAt = Date.now();
    await up();
    const settled = await until(
      'every VM settled and every operation ended',
      async () => {
        const vms = await Promise.all(
          ids.map(async (id) => (await api<{ state: string; last_error: string | null }>('GET', `/v1/vms/${id}`)).body),
        );
        if (!vms.every((v) => ['running', 'stopped', 'error'].includes(v.state))) return false;
        const ops = (
          await Promise.all(
            ids.map((id) =>
              api<{ items: { state: string; reason: string | null }[] }>('GET', `/v1/operations?vm_id=${id}`),
            ),
          )
        ).flatMap((r) => r.body.items);
        if (!ops.every((o) => TERMINAL.includes(o.state))) return false;
        return { vms, ops };
      },
      60_000,
    );
    // Within 60 s of the restart (which itself takes part of it): the bound.
    expect(Date.now() - restartedAt).toBeLessThan(60_000 + 120_000);
    for (const o of settled.ops) expect(o.reason).toBeTruthy();
    expect(
      settled.vms.map((v) => v.state),
      JSON.stringify(settled.vms.map((v) => v.last_error)),
    ).toEqual(['running', 'running', 'running', 'running', 'running']);
    const names = links();
    for (const id of ids) {
      expect(vmmsOf(id), `VMMs of ${id}`).toHaveLength(1);
      expect(names).toContain(tapOf(id));
      const boots = await api<{ items: { action: string }[] }>('GET', `/v1/events?resource_id=${id}&action=boot`);
      expect(boots.body.items).toHaveLength(1);
    }
  });

  it('five deletes cut 0.3 s after they were accepted leave no VMM, TAP, directory or row behind', async () => {
    const ids = (await api<{ items: { id: string }[] }>('GET', '/v1/vms')).body.items.map((v) => v.id);
    expect(ids).toHaveLength(5);
    for (const res of await Promise.all(ids.map((id) => api<{ operation_id: string }>('DELETE', `/v1/vms/${id}`)))) {
      expect(res.status).toBe(202);
      expect(res.body.operation_id).toBeTruthy();
    }
    await new Promise((r) => setTimeout(r, 300));
    await kill9();
    await up();
    await until(
      'every VM gone',
      async () => (await Promise.all(ids.map((id) => api('GET', `/v1/vms/${id}`)))).every((r) => r.status === 404),
      60_000,
    );
    for (const id of ids) {
      const ops = (
        await api<{ items: { kind: string; state: string; reason: string }[] }>('GET', `/v1/operations?vm_id=${id}`)
      ).body.items;
      expect(ops.every((o) => TERMINAL.includes(o.state) && o.reason)).toBe(true);
      expect(ops[0]).toMatchObject({ kind: 'delete', state: 'succeeded' });
    }
    await until('the VMMs to be gone', async () => ids.every((id) => vmmsOf(id).length === 0), 10_000);
    const names = links();
    for (const id of ids) {
      expect(names).not.toContain(tapOf(id));
      expect(existsSync(path.join(agentVms, id))).toBe(false);
    }
  });
});
