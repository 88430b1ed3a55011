import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../host/exec.ts';
import { assertDriveId, drivePath, linkSerialOutput, prepareDrives } from './drives.ts';
import { ioThrottleArgs } from './live.ts';

const PAYLOADS = ['$(touch /tmp/NQ_DEV_MARK)', 'a;rm -rf /', '`id`', '../etc', 'rootfs', 'tools', 'A', ''];

describe('device names that reach paths and argv', () => {
  it('refuses drive ids outside the strict pattern and the reserved ones', () => {
    for (const p of PAYLOADS) expect(() => assertDriveId(p), p).toThrow(RangeError);
    expect(drivePath('/vms/x', 'data_1')).toBe('/vms/x/drive-data_1.img');
  });

  it('runs nothing for a refused drive id and never creates the marker', async () => {
    const calls: string[][] = [];
    const runner: CommandRunner = {
      run: async (cmd, args) => {
        calls.push([cmd, ...args]);
        return { code: 0, stdout: '', stderr: '' };
      },
    } as CommandRunner;
    const dir = await mkdtemp(path.join(tmpdir(), 'nq-drv-'));
    for (const p of PAYLOADS)
      await expect(
        prepareDrives({ runner, image: async () => '/x' }, dir, [
          { drive_id: p, size_mib: 1, is_read_only: false, cache_type: 'Writeback', io_engine: 'Sync' },
        ]),
      ).rejects.toThrow();
    expect(calls).toEqual([]);
    expect(existsSync('/tmp/NQ_DEV_MARK')).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the serial output file a plain name inside the VM directory', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nq-ser-'));
    for (const p of ['../escape.log', '/etc/x.log', '$(touch /tmp/NQ_DEV_MARK).log', 'console.log', 'vmm.log', 'x.txt'])
      await expect(linkSerialOutput(path.join(dir, 'console.log'), dir, p), p).rejects.toThrow(RangeError);
    await linkSerialOutput(path.join(dir, 'console.log'), dir, 'serial.log');
    expect(existsSync(path.join(dir, 'serial.log'))).toBe(true);
    expect(existsSync('/tmp/NQ_DEV_MARK')).toBe(false);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('ioThrottleArgs', () => {
  it('maps a Firecracker bandwidth bucket to block_set_io_throttle with every base rate present', () => {
    expect(ioThrottleArgs('data', { bandwidth: { size: 131072, refill_time: 125 } })).toEqual({
      device: 'drive-data',
      bps: 1048576,
      bps_rd: 0,
      bps_wr: 0,
      iops: 0,
      iops_rd: 0,
      iops_wr: 0,
    });
    expect(ioThrottleArgs('data', null).bps).toBe(0);
    const burst = ioThrottleArgs('d', { ops: { size: 100, one_time_burst: 400, refill_time: 1000 } });
    expect([burst.iops, burst.iops_max, burst.iops_max_length]).toEqual([100, 500, 1]);
  });
});
