import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FirecrackerApiError, FirecrackerClient } from '../../src/vmm/firecracker/index.js';
import { FirecrackerSpec } from '../support/firecracker-spec.js';
import { type Standin, startFirecrackerStandin } from '../support/firecracker-standin.js';

const spec = new FirecrackerSpec();
const work = mkdtempSync('/tmp/nqfcu-');
let standin: Standin;
let client: FirecrackerClient;
let n = 0;

beforeEach(async () => {
  const socketPath = path.join(work, `api${++n}.sock`);
  standin = await startFirecrackerStandin({ socketPath, id: `vm${n}`, spec });
  client = new FirecrackerClient(socketPath);
});
afterEach(() => standin.close());
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function boot() {
  await client.putMachineConfig({ vcpu_count: 1, mem_size_mib: 128 });
  await client.putBootSource({ kernel_image_path: '/k' });
  await client.putDrive({ drive_id: 'rootfs', path_on_host: '/r', is_root_device: true, is_read_only: false });
  await client.action('InstanceStart');
}

function raw(method: string, urlPath: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: client.socketPath, method, path: urlPath, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('Firecracker stand-in: spec checks and pre/post-boot rules', () => {
  it('answers GET / per InstanceInfo and tracks the phase', async () => {
    expect(await client.describeInstance()).toEqual({
      app_name: 'Firecracker',
      id: `vm${n}`,
      state: 'Not started',
      vmm_version: '1.16.1',
    });
    await boot();
    expect((await client.describeInstance()).state).toBe('Running');
  });

  it('unknown routes, invalid bodies and malformed JSON get 400 with a fault_message', async () => {
    expect(await raw('PUT', '/reboot', '{}')).toMatchObject({ status: 400, text: expect.stringContaining('no path') });
    expect(await raw('PUT', '/machine-config', '{"vcpu_count":"2","mem_size_mib":1}')).toMatchObject({
      status: 400,
      text: expect.stringContaining('vcpu_count must be integer'),
    });
    expect(await raw('PUT', '/logger', '{nope')).toMatchObject({
      status: 400,
      text: expect.stringContaining('Invalid JSON'),
    });
    expect(standin.records.every((r) => r.status === 400 && r.fault_message)).toBe(true);
  });

  it('post-boot-only calls are refused before InstanceStart, pre-boot-only calls after it', async () => {
    const before = await client.pause().catch((e: unknown) => e);
    expect(before).toBeInstanceOf(FirecrackerApiError);
    expect(before).toMatchObject({
      status: 400,
      method: 'PATCH',
      path: '/vm',
      faultMessage: expect.stringMatching(/before starting/),
    });
    await expect(client.action('SendCtrlAltDel')).rejects.toThrow(/before starting/);
    await expect(client.action('InstanceStart')).rejects.toThrow(/without kernel configuration/);
    await boot();
    await expect(client.putMachineConfig({ vcpu_count: 2, mem_size_mib: 256 })).rejects.toThrow(/after starting/);
    await expect(client.patchMachineConfig({ vcpu_count: 2, mem_size_mib: 256 })).rejects.toThrow(/after starting/);
    await expect(client.putBootSource({ kernel_image_path: '/k2' })).rejects.toThrow(/after starting/);
    await expect(client.putMmdsConfig({ network_interfaces: [] })).rejects.toThrow(/after starting/);
    await expect(client.action('InstanceStart')).rejects.toThrow(/after starting/);
    await client.patchDrive({ drive_id: 'rootfs', rate_limiter: { bandwidth: { size: 1, refill_time: 1 } } });
    await expect(client.patchDrive({ drive_id: 'nope' })).rejects.toThrow(/not found/);
  });

  it('logger and metrics are set once; path and body ids must agree', async () => {
    await client.putLogger({ log_path: '/l' });
    await expect(client.putLogger({ log_path: '/l' })).rejects.toThrow(/once/);
    await client.putMetrics({ metrics_path: '/m' });
    await expect(client.putMetrics({ metrics_path: '/m' })).rejects.toThrow(/metrics/);
    await expect(
      client.send({
        method: 'PUT',
        path: '/drives/a',
        body: { drive_id: 'b', is_root_device: false, path_on_host: '/x', is_read_only: true },
      }),
    ).rejects.toThrow(/does not match/);
  });

  it('snapshot/create needs a paused VM; snapshot/load needs a fresh process', async () => {
    await boot();
    const state = path.join(work, `s${n}.state`);
    const mem = `${state}.mem`;
    await expect(client.snapshotCreate({ snapshot_path: state, mem_file_path: mem })).rejects.toThrow(/not paused/);
    await client.pause();
    await client.snapshotCreate({ snapshot_path: state, mem_file_path: mem, snapshot_type: 'Full' });
    await expect(
      client.snapshotLoad({ snapshot_path: state, mem_backend: { backend_type: 'File', backend_path: mem } }),
    ).rejects.toThrow(/after starting/);

    const fresh = await startFirecrackerStandin({ socketPath: path.join(work, `fresh${n}.sock`), id: 'fresh', spec });
    const c2 = new FirecrackerClient(path.join(work, `fresh${n}.sock`));
    try {
      await c2.putLogger({ log_path: '/l' });
      await c2.putMetrics({ metrics_path: '/m' });
      await expect(c2.snapshotLoad({ snapshot_path: state })).rejects.toThrow(/Exactly one of/);
      await c2.snapshotLoad({
        snapshot_path: state,
        mem_backend: { backend_type: 'File', backend_path: mem },
        resume_vm: true,
      });
      expect((await c2.describeInstance()).state).toBe('Running');
    } finally {
      await fresh.close();
    }

    const configured = await startFirecrackerStandin({ socketPath: path.join(work, `cfg${n}.sock`), id: 'cfg', spec });
    const c3 = new FirecrackerClient(path.join(work, `cfg${n}.sock`));
    try {
      await c3.putMachineConfig({ vcpu_count: 1, mem_size_mib: 128 });
      await expect(
        c3.snapshotLoad({ snapshot_path: state, mem_backend: { backend_type: 'File', backend_path: mem } }),
      ).rejects.toThrow(/not allowed after configuring/);
    } finally {
      await configured.close();
    }
  });

  it('balloon statistics follow the pre-boot stats setting; MMDS is a JSON merge patch', async () => {
    await client.putBalloon({ amount_mib: 8, deflate_on_oom: false, stats_polling_interval_s: 0 });
    await boot();
    await expect(client.getBalloonStats()).rejects.toThrow(/not enabled/);
    await expect(client.patchBalloonStats({ stats_polling_interval_s: 5 })).rejects.toThrow(/enable\/disable/);
    await expect(client.getMmds()).rejects.toMatchObject({ status: 404 });
    await client.putMmds({ a: { b: 1, c: 2 } });
    await client.patchMmds({ a: { c: null, d: 3 } });
    expect(await client.getMmds()).toEqual({ a: { b: 1, d: 3 } });
  });

  it('every recorded request of a session validates against the spec', async () => {
    await client.putLogger({ log_path: '/l', level: 'Info' });
    await boot();
    await client.action('FlushMetrics');
    for (const r of standin.records) expect(spec.validateRequest(r.method, r.path, r.body).valid).toBe(true);
  });
});
