import { constants } from 'node:fs';
import { access, mkdir, statfs } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import type { HostCapabilities, HostCapacity, VmmKind } from '@nqvm/api';
import type { CommandRunner } from '../host/exec.ts';
import type { VmmDriver } from '../vmm/types.ts';

export async function hostCapacity(dataDir: string): Promise<HostCapacity> {
  await mkdir(dataDir, { recursive: true });
  const fs = await statfs(dataDir);
  return {
    cpus: Math.max(1, cpus().length),
    memory_mib: Math.max(1, Math.floor(totalmem() / 1048576)),
    disk_free_bytes: fs.bavail * fs.bsize,
    disk_total_bytes: fs.blocks * fs.bsize,
  };
}

const exists = (p: string) =>
  access(p, constants.F_OK).then(
    () => true,
    () => false,
  );

/** What this host can run: drivers that report themselves available, usable KVM, vsock and tc. */
export async function hostCapabilities(
  drivers: readonly VmmDriver[],
  runner: CommandRunner,
): Promise<HostCapabilities> {
  const avail = await Promise.all(drivers.map((d) => d.availability()));
  const vmm = avail.filter((a) => a.available).map((a) => a.kind as VmmKind);
  const kvm = avail.some((a) => a.available && a.accel === 'kvm');
  const tc = await runner.run('tc', ['-V']).then(
    (r) => r.code === 0,
    () => false,
  );
  return { vmm, kvm, vsock: await exists('/dev/vhost-vsock'), tc };
}
