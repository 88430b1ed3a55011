import { describe, expect, it } from 'vitest';
import { NoCapacity } from '../../domain/errors.ts';
import { type Candidate, place } from './scheduler.ts';

const host = (name: string, over: Partial<Candidate> = {}): Candidate => ({
  id: `id-${name}`,
  name,
  healthy: true,
  capacity: { cpus: 2, memory_mib: 4096, disk_free_bytes: 1e10, disk_total_bytes: 2e10 },
  capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
  labels: {},
  allocated: { vcpu: 0, mem_mib: 0 },
  ...over,
});
const oc = { cpu: 2, mem: 1 };

describe('scheduler', () => {
  it('places on the fitting host with the most free memory', () => {
    const a = host('a', { allocated: { vcpu: 0, mem_mib: 3000 } });
    const b = host('b');
    expect(place([a, b], { vcpu: 1, mem_mib: 512, vmm: 'qemu' }, oc).name).toBe('b');
  });

  it('applies CPU overcommit and memory limits', () => {
    const h = host('a', { allocated: { vcpu: 3, mem_mib: 0 } });
    expect(place([h], { vcpu: 1, mem_mib: 256, vmm: 'qemu' }, oc).name).toBe('a');
    expect(() => place([h], { vcpu: 2, mem_mib: 256, vmm: 'qemu' }, oc)).toThrow(/no host/);
    expect(() => place([host('m')], { vcpu: 1, mem_mib: 8192, vmm: 'qemu' }, oc)).toThrow(NoCapacity);
  });

  it('explains per host why nothing fits: health, VMM kind, labels', () => {
    const hosts = [
      host('down', { healthy: false }),
      host('fc-only', { capabilities: { vmm: ['firecracker'], kvm: true, vsock: false, tc: true } }),
      host('gpu', { labels: { zone: 'b' } }),
    ];
    try {
      place(hosts, { vcpu: 1, mem_mib: 256, vmm: 'qemu', host_labels: { zone: 'a' } }, oc);
      expect.unreachable();
    } catch (err) {
      const reasons = (err as NoCapacity).extra?.hosts as Record<string, string>;
      expect(reasons.down).toMatch(/unreachable/);
      expect(reasons['fc-only']).toMatch(/cannot run qemu/);
      expect(reasons.gpu).toMatch(/label zone=a/);
    }
  });

  it('says when no hosts are registered', () => {
    expect(() => place([], { vcpu: 1, mem_mib: 256, vmm: 'qemu' }, oc)).toThrow(/no hosts are registered/);
  });
});
