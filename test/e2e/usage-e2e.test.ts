import type { Usage } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack } from './support/stack.ts';

const DEFAULT_PROJECT = '00000000-0000-4000-8000-000000000001';
const VCPUS = 2;
const RUN_MS = 30_000;

/** Usage metered over a real microVM's life, from the state changes the database keeps, across a manager restart. */
describe('usage of a real microVM', () => {
  let s: Stack;

  beforeAll(async () => {
    s = await startStack(TEST_NETWORKS.usageE2e);
  });
  afterAll(async () => s?.close());

  it('counts vCPU-seconds within 5 % of wall time x vCPUs, and a manager restart midway changes nothing', async () => {
    const made = await s.api<{ id: string }>('POST', '/v1/vms', {
      name: 'metered',
      vcpu: VCPUS,
      mem_mib: 256,
      kernel_image_id: s.images.kernel,
      initrd_image_id: s.images.initrd,
      rootfs_image_id: s.images.rootfs,
    });
    expect(made.status, JSON.stringify(made.body)).toBe(202);
    const id = made.body.id;
    const up = await s.api('GET', `/v1/vms/${id}/wait?state=running&timeout=300`);
    expect(up.body, JSON.stringify(up.body)).toMatchObject({ state: 'running' });
    const runningAt = Date.now();
    const from = new Date(runningAt - 3_600_000).toISOString();

    // The VM runs for RUN_MS of wall time: what is measured here is that time itself, not a condition awaited.
    await new Promise((r) => setTimeout(r, RUN_MS / 2));
    const cut = new Date().toISOString();
    const usageUntil = async (to: string) =>
      (await s.api<Usage>('GET', `/v1/projects/${DEFAULT_PROJECT}/usage?from=${from}&to=${to}`)).body;
    const beforeRestart = await usageUntil(cut);
    await s.restartManager();
    const afterRestart = await usageUntil(cut);
    expect(afterRestart).toEqual(beforeRestart);
    await new Promise((r) => setTimeout(r, Math.max(0, runningAt + RUN_MS - Date.now())));

    const stop = await s.api('POST', `/v1/vms/${id}/stop`);
    expect(stop.status, JSON.stringify(stop.body)).toBe(202);
    const down = await s.api('GET', `/v1/vms/${id}/wait?state=stopped&timeout=120`);
    expect(down.body, JSON.stringify(down.body)).toMatchObject({ state: 'stopped' });
    const wallS = (Date.now() - runningAt) / 1000;

    const to = new Date(Date.now() + 60_000).toISOString();
    const usage = await usageUntil(to);
    const vm = usage.resources.find((r) => r.resource_id === id)!;
    const expected = wallS * VCPUS;
    process.stderr.write(
      `[usage-e2e] wall ${wallS.toFixed(2)} s x ${VCPUS} vCPUs = ${expected.toFixed(1)}; metered ${vm.total.vcpu_seconds} vCPU-s (${((100 * (vm.total.vcpu_seconds - expected)) / expected).toFixed(2)} %)\n`,
    );
    expect(Math.abs(vm.total.vcpu_seconds - expected) / expected).toBeLessThan(0.05);
    expect(vm.total.memory_gib_seconds).toBeCloseTo((vm.total.vcpu_seconds / VCPUS) * 0.25, 1);
    expect(vm.total.disk_gib_hours).toBeGreaterThan(0);
    // Stopped: nothing more accrues, however late the usage is read.
    const later = await usageUntil(new Date(Date.now() + 120_000).toISOString());
    expect(later.resources.find((r) => r.resource_id === id)!.total.vcpu_seconds).toBe(vm.total.vcpu_seconds);
  });
});
