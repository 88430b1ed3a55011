import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { DemoImages } from '../../src/images/demo/index.js';
import { READY_MARKER } from '../../src/images/demo/index.js';
import { isProcessAlive, QemuDriver } from '../../src/vmm/qemu/index.js';
import type { VmmHandle } from '../../src/vmm/types.js';
import { demoImages, demoSpec, lastTick, vmPaths, waitForLog } from '../fixtures/demo-vm.js';

const driver = new QemuDriver();
let images: DemoImages;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  images = await demoImages();
});

afterAll(async () => {
  for (const c of cleanups) await c();
});

function track(handle: VmmHandle): void {
  cleanups.push(async () => {
    await driver.kill(handle);
    await rm(handle.paths.dir, { recursive: true, force: true });
  });
}

describe.concurrent('QemuDriver on real QEMU (TCG)', () => {
  test('reports QEMU as available with its version and accelerator', async () => {
    const a = await driver.availability();
    expect(a).toMatchObject({ kind: 'qemu', available: true });
    expect(a.version).toMatch(/^\d+\.\d+/);
    const cpuinfo = await readFile('/proc/cpuinfo', 'utf8');
    if (!/\b(vmx|svm)\b/.test(cpuinfo)) expect(a.accel).toBe('tcg');
  });

  test('boots to userspace, pause freezes the guest, resume continues it, stop powers it off', async () => {
    const paths = await vmPaths();
    const spec = await demoSpec(images, paths, 'boot-pause', 'nqvm.tick=1');
    const started = performance.now();
    const handle = await driver.launch(spec, paths);
    track(handle);
    expect(await readFile(paths.pidFile, 'utf8')).toBe(`${handle.pid}\n`);
    await waitForLog(paths.consoleLog, (t) => t.includes(READY_MARKER), 60_000);
    const bootMs = performance.now() - started;
    console.error(`[qemu-driver] process start -> "${READY_MARKER}": ${Math.round(bootMs)} ms`);
    expect(await driver.state(handle)).toBe('running');

    await waitForLog(paths.consoleLog, (t) => (lastTick(t) ?? 0) >= 3, 30_000);
    await driver.pause(handle);
    expect(await driver.state(handle)).toBe('paused');
    const frozenAt = lastTick(await readFile(paths.consoleLog, 'utf8')) ?? -1;
    // a running guest prints 5 ticks a second; watch 1.5 s for any new one
    const watchUntil = Date.now() + 1500;
    while (Date.now() < watchUntil) {
      expect(lastTick(await readFile(paths.consoleLog, 'utf8'))).toBe(frozenAt);
      await new Promise((r) => setTimeout(r, 100));
    }

    await driver.resume(handle);
    expect(await driver.state(handle)).toBe('running');
    await waitForLog(paths.consoleLog, (t) => (lastTick(t) ?? 0) > frozenAt + 2, 30_000);

    const stopStarted = Date.now();
    await driver.stop(handle, { timeoutMs: 30_000 });
    expect(await isProcessAlive(handle.pid)).toBe(false);
    expect(Date.now() - stopStarted).toBeLessThan(30_000);
    // the guest ran its shutdown actions: an ACPI power-off, not a kill
    expect(await readFile(paths.consoleLog, 'utf8')).toContain('nqvm: shutting down');
    expect(await driver.state(handle)).toBe('shutdown');
  });

  test('a held launch keeps the vCPUs stopped until its promise resolves, then the guest boots', async () => {
    const paths = await vmPaths();
    const spec = await demoSpec(images, paths, 'held');
    let release = () => {};
    const holdUntil = new Promise<void>((resolve) => {
      release = resolve;
    });
    let launched: VmmHandle | undefined;
    const launching = driver.launch(spec, paths, { holdUntil }).then((h) => {
      launched = h;
      return h;
    });
    // QEMU is up (its QMP answers) while the guest has not run a single instruction.
    await waitForLog(paths.pidFile, (t) => t.trim().length > 0, 30_000);
    const pid = Number((await readFile(paths.pidFile, 'utf8')).trim());
    const adopted = await (async () => {
      for (let i = 0; i < 100; i++) {
        const h = await driver.adopt('held', paths).catch(() => null);
        if (h) return h;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('QMP never answered');
    })();
    expect(adopted.pid).toBe(pid);
    expect(await driver.state(adopted)).toBe('held');
    expect(launched).toBeUndefined();
    expect(await readFile(paths.consoleLog, 'utf8').catch(() => '')).toBe('');
    release();
    const handle = await launching;
    track(handle);
    expect(handle.pid).toBe(pid);
    expect(await driver.state(handle)).toBe('running');
    await waitForLog(paths.consoleLog, (t) => t.includes(READY_MARKER), 60_000);
  });

  test('a held launch whose promise rejects kills the VMM and fails with that error', async () => {
    const paths = await vmPaths();
    const spec = await demoSpec(images, paths, 'held-fail');
    const holdUntil = new Promise<void>((_, reject) => setTimeout(() => reject(new Error('rootfs edit failed')), 50));
    await expect(driver.launch(spec, paths, { holdUntil })).rejects.toThrow('rootfs edit failed');
    const pid = Number((await readFile(paths.pidFile, 'utf8')).trim());
    expect(pid).toBeGreaterThan(1);
    expect(await isProcessAlive(pid)).toBe(false);
    await rm(paths.dir, { recursive: true, force: true });
  });

  test('saveState writes the paused guest to a file and -incoming restores it where it left off', async () => {
    const paths = await vmPaths();
    const spec = await demoSpec(images, paths, 'snap', 'nqvm.tick=1');
    const handle = await driver.launch(spec, paths);
    track(handle);
    await waitForLog(paths.consoleLog, (t) => (lastTick(t) ?? 0) >= 3, 60_000);
    const stateFile = path.join(paths.dir, 'state.bin');
    await driver.saveState(handle, stateFile);
    expect(await driver.state(handle)).toBe('paused');
    const savedTick = lastTick(await readFile(paths.consoleLog, 'utf8')) ?? -1;
    await driver.kill(handle);

    const offset = (await readFile(paths.consoleLog)).length;
    const restored = await driver.launch({ ...spec, incoming_state_path: stateFile }, paths);
    track(restored);
    await driver.resume(restored);
    const after = await waitForLog(
      paths.consoleLog,
      (t) => {
        const fresh = t.slice(offset);
        return (lastTick(fresh) ?? -1) > savedTick + 2 ? fresh : null;
      },
      30_000,
    );
    const firstTick = Number(/^tick (\d+)/m.exec(after)?.[1]);
    expect(firstTick).toBeGreaterThan(savedTick);
    expect(after).not.toContain(READY_MARKER);
  });

  test('a detached VMM survives its launching process and is adopted with QMP working', async () => {
    const paths = await vmPaths();
    const spec = await demoSpec(images, paths, 'adopt-me');
    const fixture = path.join(import.meta.dirname, '../fixtures/launch-detached.ts');
    const parent = spawn(process.execPath, ['--import', 'tsx', fixture, JSON.stringify(spec), JSON.stringify(paths)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const launched = await new Promise<{ pid: number }>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line) as { pid: number });
      });
      parent.once('exit', (code) => reject(new Error(`launcher exited ${code} before reporting`)));
    });
    const parentGone = new Promise((r) => parent.once('exit', r));
    parent.kill('SIGKILL');
    await parentGone;

    const handle = await driver.adopt('adopt-me', paths);
    expect(handle?.pid).toBe(launched.pid);
    if (!handle) return;
    track(handle);
    expect(await isProcessAlive(handle.pid)).toBe(true);
    await waitForLog(paths.consoleLog, (t) => t.includes(READY_MARKER), 60_000);
    expect(await driver.state(handle)).toBe('running');
    await driver.pause(handle);
    expect(await driver.state(handle)).toBe('paused');
    await driver.kill(handle);
    expect(await driver.adopt('adopt-me', paths)).toBeNull();
  });
});
