import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capLog, type LoggedVm, VmLogs } from './vm-logs.ts';

const CAP = 256 * 1024;
let dir: string;
let logs: VmLogs | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nqvm-vmlogs-'));
});
afterEach(async () => {
  logs?.close();
  logs = undefined;
  // A cap already under way (its .1.tmp written, then renamed) may still add a file while the directory goes:
  // rm retries ENOTEMPTY.
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const size = (p: string) => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

describe('VM logs under their cap', () => {
  it('capLog keeps the live file’s tail in .1 and empties it once past a quarter of the cap', async () => {
    const path = join(dir, 'console.log');
    await writeFile(path, 'a'.repeat(60 * 1024));
    expect(await capLog(path, CAP)).toBe(false);
    await writeFile(path, `${'a'.repeat(200 * 1024)}THE-END`);
    expect(await capLog(path, CAP)).toBe(true);
    expect(size(path)).toBe(0);
    const kept = readFileSync(`${path}.1`, 'utf8');
    expect(kept.length).toBe(CAP / 2);
    expect(kept.endsWith('THE-END')).toBe(true);
  });

  it('a guest writing its console in a loop (1 MB/s, far faster than a serial port) never takes the log past the cap', async () => {
    const vm: LoggedVm = {
      id: 'vm-1',
      consoleLog: join(dir, 'console.log'),
      vmmLog: join(dir, 'vmm.log'),
      maxBytes: CAP,
      pid: 4242,
    };
    // Opened once with O_APPEND like QEMU's logfile=…,logappend=on: truncation moves its next write to the start.
    const fd = openSync(vm.consoleLog, 'a');
    await writeFile(vm.vmmLog, '');
    logs = new VmLogs({ list: () => [vm], sweepMs: 1000, readCmdline: async () => 'qemu-system-x86_64\0-name\0vm 1' });
    await logs.sweep();
    const line = `${'x'.repeat(99)}\n`;
    let worst = 0;
    let written = 0;
    // 1 MiB in 10 KB bursts every 10 ms (slower when this machine is busy: the amount is what counts).
    while (written < 4 * CAP) {
      for (let i = 0; i < 100; i++) written += writeSync(fd, line);
      worst = Math.max(worst, size(vm.consoleLog) + size(`${vm.consoleLog}.1`));
      await new Promise((r) => setTimeout(r, 10));
    }
    closeSync(fd);
    expect(worst).toBeLessThanOrEqual(CAP);
    expect(
      readFileSync(`${vm.consoleLog}.1`, 'utf8')
        .split('\n')
        .slice(1, -1)
        .every((l) => l === line.trim()),
    ).toBe(true);
  });

  it('opens the VMM log of each VMM process with its command line', async () => {
    const vm: LoggedVm = {
      id: 'vm-1',
      consoleLog: join(dir, 'console.log'),
      vmmLog: join(dir, 'vmm.log'),
      maxBytes: CAP,
      pid: 4242,
    };
    await writeFile(vm.vmmLog, 'qemu-system-x86_64: terminating on signal 15\n');
    logs = new VmLogs({ list: () => [vm], readCmdline: async (pid) => `qemu-system-x86_64\0-name\0vm ${pid}` });
    await logs.sweep();
    await logs.sweep();
    vm.pid = 4343;
    await logs.sweep();
    const lines = readFileSync(vm.vmmLog, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/nqvm-agent: VMM pid 4242: qemu-system-x86_64 -name 'vm 4242'$/);
    expect(lines[2]).toMatch(/VMM pid 4343: /);
  });
});
