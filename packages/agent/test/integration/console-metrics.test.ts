import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { VmMetricsSample } from '@nqvm/api';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { ConsoleHubs, consoleRoutes } from '../../src/console/index.ts';
import { MetricsHub, metricsRoutes, systemSamplerIo, VmMetricsSampler } from '../../src/metrics/index.ts';
import { QemuDriver } from '../../src/vmm/qemu/index.ts';
import type { VmmHandle, VmPaths } from '../../src/vmm/types.ts';
import { demoImages, demoSpec, vmPaths, waitForLog } from '../fixtures/demo-vm.ts';

const VM_ID = '3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b';
const SECRET = 'host-secret-for-console-tests';
const driver = new QemuDriver();
let paths: VmPaths;
let handle: VmmHandle;
let app: FastifyInstance;
let base: string;
let hubs: ConsoleHubs;
let metricsHub: MetricsHub;

/** A WebSocket client that records terminal bytes and control messages, with a wait on a real condition. */
class Viewer {
  text = '';
  controls: Array<Record<string, unknown>> = [];
  readonly ws: WebSocket;
  constructor(url: string, secret = SECRET) {
    this.ws = new WebSocket(url, { headers: { authorization: `Bearer ${secret}` } });
    this.ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) this.text += data.toString('utf8');
      else this.controls.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    });
  }
  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }
  async until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.text.slice(-300))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const logins = (s: string) => s.split('login:').length - 1;

beforeAll(async () => {
  const images = await demoImages();
  paths = await vmPaths();
  const spec = await demoSpec(images, paths, VM_ID);
  handle = await driver.launch(spec, paths);
  await waitForLog(paths.consoleLog, (t) => t.includes('login:'), 90_000);

  hubs = new ConsoleHubs((id) => (id === VM_ID ? paths : undefined), { retryMinMs: 50, retryMaxMs: 500 });
  const sampler = new VmMetricsSampler(
    systemSamplerIo({
      tapCounters: async () => {
        throw new Error('no NIC in this test');
      },
    }),
  );
  metricsHub = new MetricsHub(sampler, (id) =>
    id === VM_ID
      ? {
          vmm: 'qemu',
          pid: handle.pid,
          controlSocket: paths.controlSocket,
          taps: [],
          guestIp: undefined,
          guestAgent: false,
        }
      : undefined,
  );
  app = Fastify();
  const authorize = async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.headers.authorization !== `Bearer ${SECRET}`) return reply.code(401).send({ code: 'unauthorized' });
  };
  const exists = (id: string) => id === VM_ID;
  await app.register(consoleRoutes, { hubs, authorize, exists });
  await app.register(metricsRoutes, { hub: metricsHub, authorize, exists });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  hubs?.closeAll();
  metricsHub?.closeAll();
  await app?.close();
  if (handle) await driver.kill(handle);
  if (paths) await rm(paths.dir, { recursive: true, force: true });
});

describe('console hub on a real QEMU microVM', () => {
  test('refuses a viewer without the host secret before the upgrade, and an unknown VM with 404', async () => {
    for (const [url, secret, status] of [
      [`ws://${base}/agent/v1/vms/${VM_ID}/console/ws`, 'wrong', 401],
      [`ws://${base}/agent/v1/vms/00000000-0000-4000-8000-000000000000/console/ws`, SECRET, 404],
      [`ws://${base}/agent/v1/vms/${VM_ID}/metrics/ws`, 'wrong', 401],
    ] as const) {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${secret}` } });
      ws.on('error', () => {});
      const code = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
      });
      expect(code).toBe(status);
      ws.terminate();
    }
  });

  test('two viewers get the scrollback first, then both see live output of input typed by one', async () => {
    const a = new Viewer(`ws://${base}/agent/v1/vms/${VM_ID}/console/ws`);
    await a.opened();
    await a.until('scrollback with the login prompt', () => logins(a.text) >= 1);
    expect(a.controls[0]).toMatchObject({ type: 'hello' });
    expect(a.controls[0]?.scrollback_bytes).toBeGreaterThan(0);
    const b = new Viewer(`ws://${base}/agent/v1/vms/${VM_ID}/console/ws`);
    await b.opened();
    await b.until('scrollback on the second viewer', () => logins(b.text) >= 1);
    expect(hubs.active).toBe(1);

    const [beforeA, beforeB] = [logins(a.text), logins(b.text)];
    // getty answers an empty user name by printing the prompt again
    a.ws.send(Buffer.from('\n'));
    await a.until('a new prompt on the typing viewer', () => logins(a.text) > beforeA);
    await b.until('the same prompt on the other viewer', () => logins(b.text) > beforeB);

    b.ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
    await b.until('resize recorded', () => hubs.hub(VM_ID).size?.cols === 120);
    b.ws.send('not json');
    await b.until('an error for a bad text frame', () => b.controls.some((c) => c.type === 'error'));

    a.ws.close();
    b.ws.close();
    await a.until('the hub to close once nobody watches', () => hubs.active === 0);
  });

  test('the host sampler reports CPU, RSS and QMP disk bytes of the QEMU process; the WS pushes ~1 frame/s', async () => {
    const sample = async () => {
      const res = await fetch(`http://${base}/agent/v1/vms/${VM_ID}/metrics`, {
        headers: { authorization: `Bearer ${SECRET}` },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as VmMetricsSample;
    };
    // An idle guest's VMM can use less than one clock tick between two samples: wait for a window with work in it.
    await expect.poll(async () => (await sample()).host.cpu_pct ?? 0, { timeout: 15_000 }).toBeGreaterThan(0);
    const s = await sample();
    expect(s.host.source).toBe('host');
    expect(s.host.rss_bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(s.host.disk_read_bytes).toBeGreaterThan(0);
    expect(s.host.net_rx_bytes).toBeNull();
    expect(s.guest).toEqual({ source: 'guest', health: 'not_installed', last_seen: null, metrics: null });

    const frames: Array<{ at: number; bytes: number }> = [];
    const ws = new WebSocket(`ws://${base}/agent/v1/vms/${VM_ID}/metrics/ws`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    ws.on('message', (d: Buffer) => frames.push({ at: Date.now(), bytes: d.length }));
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    const deadline = t0 + 15_000;
    while (frames.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const used = process.cpuUsage(cpu0);
    const wall = Date.now() - t0;
    ws.close();
    expect(frames.length).toBeGreaterThanOrEqual(6);
    const gaps = frames.slice(2).map((f, i) => f.at - (frames[i + 1]?.at ?? 0));
    for (const g of gaps) expect(g).toBeGreaterThan(700);
    const cpuShare = ((used.user + used.system) / 1000 / wall) * 100;
    console.error(
      `[metrics] frame ${frames[0]?.bytes} bytes; test process CPU while streaming 1 VM at 1 Hz: ${cpuShare.toFixed(2)}% of a core (includes the ws client)`,
    );
    await new Promise<void>((r) => ws.once('close', () => r()));
    const idleDeadline = Date.now() + 5000;
    while (metricsHub.active && Date.now() < idleDeadline) await new Promise((r) => setTimeout(r, 50));
    expect(metricsHub.active).toBe(0);
  });

  test('a viewer stays attached across a QEMU restart: reconnecting, then connected, then the new boot output', async () => {
    const v = new Viewer(`ws://${base}/agent/v1/vms/${VM_ID}/console/ws`);
    await v.opened();
    await v.until('scrollback', () => logins(v.text) >= 1);
    await driver.kill(handle);
    await v.until('reconnecting status', () => v.controls.some((c) => c.state === 'reconnecting'), 10_000);
    const images = await demoImages();
    handle = await driver.launch(await demoSpec(images, { ...paths }, VM_ID), paths);
    const lost = v.controls.findIndex((c) => c.state === 'reconnecting');
    await v.until('connected status', () => v.controls.slice(lost).some((c) => c.state === 'connected'), 30_000);
    const before = logins(v.text);
    await v.until('a login prompt from the new boot', () => logins(v.text) > before, 90_000);
    v.ws.close();
  });
});
