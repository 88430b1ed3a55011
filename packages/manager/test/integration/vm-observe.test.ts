import type { AddressInfo } from 'node:net';
import websocket from '@fastify/websocket';
import type { VmMetricsSample } from '@nqvm/api';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const PASSWORD = 'guest-pass-Zq81!';

/** A stand-in host agent on loopback: answers metrics samples and echoes console input as output. */
async function standInAgent(port = 0): Promise<FastifyInstance> {
  const agent = Fastify();
  await agent.register(websocket);
  agent.get<{ Params: { id: string } }>('/agent/v1/vms/:id/metrics', async (req) => sample(req.params.id));
  agent.get('/agent/v1/vms/:id/console/ws', { websocket: true }, (socket) => {
    socket.send(JSON.stringify({ type: 'hello', scrollback_bytes: 7 }));
    socket.send(Buffer.from('login: '));
    socket.on(
      'message',
      (d: Buffer, binary: boolean) => binary && socket.send(Buffer.concat([Buffer.from('echo:'), d])),
    );
  });
  await agent.listen({ host: '127.0.0.1', port });
  return agent;
}

function sample(vmId: string, at = new Date()): VmMetricsSample {
  return {
    type: 'sample',
    vm_id: vmId,
    at: at.toISOString(),
    host: {
      source: 'host',
      cpu_pct: 12.5,
      rss_bytes: 300_000_000,
      disk_read_bytes: 4096,
      disk_write_bytes: 512,
      net_rx_bytes: 10,
      net_tx_bytes: 20,
    },
    guest: { source: 'guest', health: 'unreachable', last_seen: null, metrics: null },
  };
}

describe.each(DB_KINDS)('VM shell and metrics on %s', (kind) => {
  let t: TestApp;
  let agent: FastifyInstance;
  let agentPort = 0;
  let vmId = '';
  let base = '';

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true', NQVM_METRICS_RETENTION_DAYS: '30' });
    agent = await standInAgent();
    agentPort = (agent.server.address() as AddressInfo).port;
    const image = async (k: string) =>
      (
        await t.request({
          method: 'POST',
          url: `/v1/images/upload?name=${k}1&kind=${k}`,
          headers: { 'content-type': 'application/octet-stream' },
          payload: Buffer.from(`${k} bytes`),
        })
      ).json().id as string;
    const [kernel, rootfs] = [await image('kernel'), await image('rootfs')];
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name: 'h1', addr: `http://127.0.0.1:${agentPort}` },
    });
    await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${reg.json().id}/heartbeat`,
      headers: { authorization: `Bearer ${reg.json().secret}` },
      payload: {
        capacity: { cpus: 2, memory_mib: 2048, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms: [],
      },
    });
    const vm = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name: 'observed',
        vcpu: 1,
        mem_mib: 256,
        kernel_image_id: kernel,
        rootfs_image_id: rootfs,
        username: 'alice',
        password: PASSWORD,
      },
    });
    expect(vm.statusCode, vm.body).toBe(202);
    vmId = vm.json().id;
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await agent?.close();
    await t?.close();
  });

  it('returns the decrypted guest password to a user, while the database holds only ciphertext', async () => {
    expect((await t.app.inject({ method: 'GET', url: `/v1/vms/${vmId}/shell` })).statusCode).toBe(401);
    const res = await t.request({ method: 'GET', url: `/v1/vms/${vmId}/shell` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ username: 'alice', password: PASSWORD });
    const [row] = await t.database.withSession((s) =>
      s.query<{ password_enc: string }>('SELECT password_enc FROM vms WHERE id = $1', [vmId]),
    );
    expect(row?.password_enc).toBeTruthy();
    expect(row?.password_enc).not.toContain(PASSWORD);
    const dump = await t.database.withSession((s) =>
      s.query<{ t: string }>('SELECT row_to_json(v)::text AS t FROM vms v'),
    );
    expect(dump.map((d) => d.t).join('')).not.toContain(PASSWORD);
  });

  it.each(['shell/ws', 'metrics/ws'])('refuses %s without credentials with a 401 at the upgrade', async (path) => {
    for (const headers of [{}, { authorization: 'Bearer not-a-token' }]) {
      const ws = new WebSocket(`ws://${base}/v1/vms/${vmId}/${path}`, { headers });
      ws.on('error', () => {});
      const code = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
      });
      expect(code).toBe(401);
    }
  });

  it('relays the shell both ways and survives an agent restart by reconnecting', async () => {
    const ws = new WebSocket(`ws://${base}/v1/vms/${vmId}/shell/ws`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
    let text = '';
    const controls: Array<{ type: string; state?: string }> = [];
    ws.on('message', (d: Buffer, binary: boolean) => {
      if (binary) text += d.toString();
      else controls.push(JSON.parse(d.toString()));
    });
    const until = async (what: string, fn: () => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!fn()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${text}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    await until('scrollback', () => text.includes('login: '));
    expect(controls[0]).toEqual({ type: 'hello', scrollback_bytes: 7 });
    ws.send(Buffer.from('id\n'));
    await until('echo', () => text.includes('echo:id\n'));

    await agent.close();
    await until('reconnecting', () => controls.some((c) => c.state === 'reconnecting'));
    expect(ws.readyState).toBe(WebSocket.OPEN);
    agent = await standInAgent(agentPort);
    await until('connected', () => controls.some((c) => c.state === 'connected'));
    ws.send(Buffer.from('again\n'));
    await until('echo after the restart', () => text.includes('echo:again\n'));
    ws.close();
  });

  it('flush-metrics stores a sample that the history returns for its time range', async () => {
    const flushed = await t.request({ method: 'POST', url: `/v1/vms/${vmId}/flush-metrics` });
    expect(flushed.statusCode, flushed.body).toBe(200);
    expect(flushed.json()).toMatchObject({ type: 'sample', host: { source: 'host', cpu_pct: 12.5 } });
    const at = new Date(flushed.json().at);
    const q = (from: Date, to: Date, step = 'raw') =>
      t.request({
        method: 'GET',
        url: `/v1/vms/${vmId}/metrics?from=${from.toISOString()}&to=${to.toISOString()}&step=${step}`,
      });
    const hit = await q(new Date(at.getTime() - 1000), new Date(at.getTime() + 1000));
    expect(hit.json().points).toEqual([
      expect.objectContaining({ at: at.toISOString(), host_cpu_pct: 12.5, disk_read_bytes: 4096, samples: 1 }),
    ]);
    expect((await q(new Date(at.getTime() + 1000), new Date(at.getTime() + 2000))).json().points).toEqual([]);
    const bad = await q(new Date(at.getTime() + 1000), at);
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'invalid_range', field: 'query.from' });
    const badStep = await q(at, new Date(), '7m');
    expect(badStep.statusCode).toBe(400);
  });

  it('the sampler tick stores a sample per running VM; /metrics exposes per-VM series labelled vm, host and owner', async () => {
    // Through the state machine, the only writer of a VM's state (a stopped VM passes through starting).
    const machine = t.built.services.vms.machine;
    await t.built.services.operations.idle();
    await machine.change({ vmId, from: ['creating', 'stopped', 'error'], to: 'starting' });
    await machine.change({ vmId, from: ['starting'], to: 'running' });
    expect((await t.built.services.vms.row(vmId)).state).toBe('running');
    expect(await t.built.services.observe.tick()).toBe(true);
    const body = (await t.request({ method: 'GET', url: '/metrics' })).body;
    expect(body).toMatch(
      new RegExp(`nqvm_vm_host_cpu_percent\\{vm="observed",vm_id="${vmId}",host="h1",owner="[^"]*"\\} 12.5`),
    );
    expect(body).toMatch(/nqvm_vm_disk_read_bytes_total\{vm="observed".*\} 4096/);
    expect(body).toMatch(/nqvm_vm_guest_healthy\{vm="observed".*\} 0/);
  });

  it('rolls samples older than 24 h into 5-minute points and deletes what is past retention', async () => {
    const repo = (await import('../../src/features/observe/observe.repository.ts')).ObserveRepository;
    const r = new repo(t.database.db);
    const { pointFromSample } = await import('../../src/features/observe/rollup.ts');
    const bucket = Math.floor((Date.now() - 2 * 86_400_000) / 300_000) * 300_000;
    for (let i = 0; i < 30; i++) {
      const s = sample(vmId, new Date(bucket + i * 10_000));
      s.host.cpu_pct = i % 2 ? 10 : 30;
      await r.insert(vmId, pointFromSample(s));
    }
    await r.insert(vmId, pointFromSample(sample(vmId, new Date(Date.now() - 40 * 86_400_000))));
    const observe = t.built.services.observe;
    await observe.rollup();
    expect(await observe.rollup()).toBe(0);
    const hist = await t.request({
      method: 'GET',
      url: `/v1/vms/${vmId}/metrics?from=${new Date(bucket - 1).toISOString()}&to=${new Date(bucket + 600_000).toISOString()}`,
    });
    expect(hist.json().points).toEqual([
      expect.objectContaining({ at: new Date(bucket).toISOString(), samples: 30, host_cpu_pct: 20 }),
    ]);
    expect(await observe.prune()).toBe(1);
    const old = await t.request({
      method: 'GET',
      url: `/v1/vms/${vmId}/metrics?from=${new Date(Date.now() - 41 * 86_400_000).toISOString()}&to=${new Date(bucket - 1).toISOString()}&step=1h`,
    });
    expect(old.json().points).toEqual([]);
  });
});
