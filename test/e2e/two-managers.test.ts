import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createDatabase, startPostgres, type TestPostgres } from '../../packages/manager/test/support/postgres.ts';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { DEMO_FILES, jsonClient, kill, type Proc, startProgram, vmmsOf } from './support/processes.ts';
import { inPrivateNetns, until } from './support/stack.ts';

const NET = TEST_NETWORKS.twoManagers;
const PORTS = { a: NET.managerPort, b: TEST_NETWORKS.twoManagersB.managerPort };
const PASSWORD = 'two-managers-admin-password';
const TERMINAL = ['succeeded', 'failed', 'cancelled'];

interface Operation {
  id: string;
  kind: string;
  state: string;
  attempts: number;
  reason: string | null;
}
interface Message {
  type: string;
  event?: { id: string; action: string; resource_id: string | null; detail: Record<string, unknown> };
}

/**
 * Issue 11: two manager processes on one PostgreSQL and one agent, real QEMU. Manager A is killed with SIGKILL right
 * after it accepted a create and claimed its operation; B takes the operation over once A's lease runs out and
 * finishes the boot (exactly one VMM), a `wait` on B returns, and a WebSocket client of A reconnects to B, resumes
 * after the last event it saw and sees the VM's boot and running.
 */
describe('two managers on one PostgreSQL: a killed manager’s operation is finished by the other', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nqvm-two-managers-'));
  chmodSync(dir, 0o755);
  const agentData = path.join(dir, 'agent');
  const secretKey = randomBytes(32).toString('base64');
  let pg: TestPostgres | undefined;
  let databaseUrl = '';
  const managers: Partial<Record<'a' | 'b', Proc>> = {};
  let agent: Proc | undefined;
  let token = '';
  const api = {
    a: jsonClient(`http://127.0.0.1:${PORTS.a}`, () => token),
    b: jsonClient(`http://127.0.0.1:${PORTS.b}`, () => token),
  };
  const images = { kernel: '', initrd: '', rootfs: '' };

  async function startManager(name: 'a' | 'b'): Promise<void> {
    const m = startProgram('manager', {
      DATABASE_URL: databaseUrl,
      NQVM_SECRET_KEY: secretKey,
      // One data dir: image content is files there, and both managers serve it (as shared storage would).
      NQVM_DATA_DIR: path.join(dir, 'manager'),
      MANAGER_BIND: `127.0.0.1:${PORTS[name]}`,
      NQVM_ADMIN_PASSWORD: PASSWORD,
      NQVM_NETWORK_CIDR: NET.cidr,
      FC_BRIDGE: NET.bridge,
      NQVM_LOG_LEVEL: 'warn',
      NQVM_HOST_HEARTBEAT_TIMEOUT_S: '600',
    });
    managers[name] = m;
    await until(
      'the manager to listen',
      async () => m.output().includes('listening') || m.proc.exitCode !== null,
      120_000,
    );
    expect(m.proc.exitCode, m.output()).toBeNull();
  }

  /** Follows `/v1/events/ws` of a manager from after event `after`; resolves once the stream is ready. */
  async function follow(port: number, after?: string): Promise<{ got: Message[]; ws: WebSocket }> {
    const got: Message[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws${after ? `?after=${after}` : ''}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as Message));
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    await until('the stream to be ready', async () => got.some((m) => m.type === 'ready'), 10_000);
    return { got, ws };
  }

  beforeAll(async () => {
    expect(inPrivateNetns()).toBe(true);
    for (const f of Object.values(DEMO_FILES))
      if (!existsSync(f)) throw new Error(`${f} missing: npm test builds the demo images before isolating the network`);
    pg = await startPostgres();
    databaseUrl = await createDatabase(pg.baseUrl);
    // A first: it migrates and creates the admin; B starts on the same database.
    await startManager('a');
    await startManager('b');
    const login = await api.a<{ token: string }>('POST', '/v1/auth/login', { username: 'admin', password: PASSWORD });
    expect(login.status).toBe(200);
    token = login.body.token;
    const made = await api.a<{ token: string }>('POST', '/v1/join-tokens', { description: 'two managers agent' });
    expect(made.status).toBe(201);
    const a = startProgram('agent', {
      // The managers' one address as a balancer in front of them would give it: here B's, the one that stays up
      // (an agent fetches image content from its MANAGER_BASE; a boot whose manager is gone fails at images).
      MANAGER_BASE: `http://127.0.0.1:${PORTS.b}`,
      NQVM_JOIN_TOKEN: made.body.token,
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
    await until(
      'the host to be healthy on B',
      async () =>
        (await api.b<{ items: { health: string }[] }>('GET', '/v1/hosts')).body.items[0]?.health === 'healthy',
      30_000,
    );
    for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
      const res = await fetch(`http://127.0.0.1:${PORTS.a}/v1/images/upload?name=two-${kind}&kind=${kind}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
        body: readFileSync(DEMO_FILES[kind]),
      });
      expect(res.status).toBe(201);
      images[kind] = ((await res.json()) as { id: string }).id;
    }
  }, 300_000);

  afterAll(async () => {
    for (const p of [managers.a, managers.b, agent]) if (p) await kill(p, 'SIGTERM');
    const vms = path.join(agentData, 'vms');
    for (const id of existsSync(vms) ? readdirSync(vms) : [])
      for (const pid of vmmsOf(id)) process.kill(pid, 'SIGKILL');
    spawnSync('ip', ['link', 'del', NET.bridge], { stdio: 'ignore' });
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('A killed right after accepting a create: B finishes the boot, answers a wait, and A’s stream resumes on B', async () => {
    const onA = await follow(PORTS.a);
    const created = await api.a<{ id: string; operation_id: string }>('POST', '/v1/vms', {
      name: 'taken-over',
      vcpu: 1,
      mem_mib: 256,
      kernel_image_id: images.kernel,
      initrd_image_id: images.initrd,
      rootfs_image_id: images.rootfs,
    });
    expect(created.status).toBe(202);
    const { id, operation_id: opId } = created.body;
    // Killed while it holds the operation's lease (its owner names A's pid): B may take it only once that expires.
    const pidA = managers.a!.proc.pid;
    await until(
      'A to claim the operation',
      async () =>
        (await api.b<{ lease_owner: string | null }>('GET', `/v1/operations/${opId}`)).body.lease_owner?.includes(
          `:${pidA}:`,
        ),
      30_000,
    );
    await kill(managers.a!);
    const killedAt = Date.now();
    // A client of A: the last event it saw, then reconnected to B from there.
    const seen = onA.got.filter((m) => m.type === 'event').map((m) => m.event!);
    onA.ws.terminate();
    expect(seen.some((e) => e.resource_id === id && e.action === 'create')).toBe(true);
    const lastSeen = seen[seen.length - 1]!.id;
    const onB = await follow(PORTS.b, lastSeen);
    // A died holding it: the operation is not over, whatever step it had reached.
    const atKill = (await api.b<Operation & { lease_owner: string }>('GET', `/v1/operations/${opId}`)).body;
    expect(TERMINAL).not.toContain(atKill.state);
    expect(atKill.lease_owner).toContain(`:${pidA}:`);

    const waited = await api.b<{ id: string; state: string }>('GET', `/v1/vms/${id}/wait?state=running&timeout=90`);
    const diag = async () =>
      JSON.stringify({
        vm: (await api.b('GET', `/v1/vms/${id}`)).body,
        ops: (await api.b('GET', `/v1/operations?vm_id=${id}`)).body,
        b: managers.b?.output().slice(-3000),
        agent: agent?.output().slice(-3000),
      });
    expect(waited.status, waited.status === 200 ? '' : await diag()).toBe(200);
    expect(waited.body.state).toBe('running');
    const op = await until(
      'the operation to end on B',
      async () => {
        const o = (await api.b<Operation>('GET', `/v1/operations/${opId}`)).body;
        return TERMINAL.includes(o.state) && o;
      },
      30_000,
    );
    process.stderr.write(`[two-managers] B finished A's create ${Date.now() - killedAt} ms after A was killed\n`);
    expect(op).toMatchObject({ kind: 'create', state: 'succeeded' });
    // Claimed again by B after A's lease ran out.
    expect(op.attempts).toBeGreaterThanOrEqual(2);
    expect(op.reason).toBeTruthy();
    expect(vmmsOf(id)).toHaveLength(1);
    const ops = (await api.b<{ items: Operation[] }>('GET', `/v1/operations?vm_id=${id}`)).body.items;
    expect(ops.map((o) => `${o.kind}:${o.state}`)).toEqual(['create:succeeded']);
    // The resumed stream: what happened after A's last event, each once, with no gap.
    await until(
      "the VM's boot on B's stream",
      async () => onB.got.some((m) => m.event?.resource_id === id && m.event.action === 'boot'),
      10_000,
    );
    const resumed = onB.got.filter((m) => m.type === 'event').map((m) => m.event!);
    expect(resumed.every((e) => BigInt(e.id) > BigInt(lastSeen))).toBe(true);
    expect(new Set(resumed.map((e) => e.id)).size).toBe(resumed.length);
    expect(resumed.filter((e) => e.resource_id === id && e.action === 'boot')).toHaveLength(1);

    // B deletes it: no VMM left.
    const del = await api.b('DELETE', `/v1/vms/${id}`);
    expect(del.status).toBeLessThan(300);
    await until('the VM to be gone', async () => (await api.b('GET', `/v1/vms/${id}`)).status === 404, 60_000);
    expect(vmmsOf(id)).toHaveLength(0);
    onB.ws.terminate();
  }, 240_000);
});
