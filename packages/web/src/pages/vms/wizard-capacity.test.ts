import type { Host } from '@nqvm/api';
import { describe, expect, it } from 'vitest';
import { diskShortfall, freeOnHosts, machineShortfall } from './wizard-capacity.ts';

function host(name: string, cpus: number, memory_mib: number, used: { vcpu: number; mem_mib: number }): Host {
  return {
    id: `id-${name}`,
    name,
    addr: 'http://127.0.0.1:1',
    health: 'healthy',
    capacity: { cpus, memory_mib, disk_free_bytes: 10 * 2 ** 30, disk_total_bytes: 20 * 2 ** 30 },
    capabilities: null,
    labels: {},
    allocated: { ...used, vms: 1 },
    last_seen_at: null,
  } as unknown as Host;
}

const oc = { cpu: 4, mem: 1 };

describe('the wizard checks capacity per step as the scheduler would', () => {
  const free = freeOnHosts(
    [host('a', 2, 4096, { vcpu: 6, mem_mib: 1024 }), host('b', 1, 1024, { vcpu: 0, mem_mib: 0 })],
    oc,
  );

  it('counts overcommitted vCPUs and memory minus what is allocated', () => {
    expect(free).toEqual([
      { host: 'a', vcpu: 2, memMib: 3072, diskBytes: 10 * 2 ** 30 },
      { host: 'b', vcpu: 4, memMib: 1024, diskBytes: 10 * 2 ** 30 },
    ]);
  });

  it('passes a VM some host can take', () => {
    expect(machineShortfall(free, 2, 2048)).toEqual({});
    expect(machineShortfall([], 64, 65536)).toEqual({});
  });

  it('names the short resource and the best host', () => {
    expect(machineShortfall(free, 8, 256)).toEqual({
      vcpu: "not enough vCPU: 8 asked, the most on a host is b's 4 free",
    });
    expect(machineShortfall(free, 1, 65536).mem_mib).toMatch(/^not enough memory: 64.0 GiB asked, .*a's 3.0 GiB free$/);
    expect(machineShortfall(free, 4, 2048).mem_mib).toMatch(/no single host has both 4 vCPU and 2.0 GiB/);
  });

  it('refuses a root filesystem larger than any free disk', () => {
    expect(diskShortfall(free, 2 ** 30)).toEqual({});
    expect(diskShortfall(free, 11 * 2 ** 30).rootfs_image_id).toMatch(/^not enough disk: .* needs 11.0 GiB/);
  });
});
