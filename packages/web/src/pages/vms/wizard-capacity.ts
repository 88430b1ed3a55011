import type { Host } from '@nqvm/api';
import { formatBytes, formatMib } from '../../lib/format.ts';

export interface Overcommit {
  cpu: number;
  mem: number;
}

interface Free {
  host: string;
  vcpu: number;
  memMib: number;
  diskBytes: number;
}

/** What each host that could take a VM has free, as the scheduler counts it (capacity × overcommit − allocated). */
export function freeOnHosts(hosts: Host[], oc: Overcommit, hostId = ''): Free[] {
  return hosts
    .filter((h) => h.health === 'healthy' && h.capacity && (!hostId || h.id === hostId))
    .map((h) => ({
      host: h.name,
      vcpu: Math.max(0, h.capacity!.cpus * oc.cpu - h.allocated.vcpu),
      memMib: Math.max(0, Math.floor(h.capacity!.memory_mib * oc.mem) - h.allocated.mem_mib),
      diskBytes: h.capacity!.disk_free_bytes,
    }));
}

/**
 * The Machine step's check against the hosts, before any request: which resource is short, by how much, on the
 * best host — the same arithmetic as the manager's scheduler, so the step says what "no host can take this VM"
 * would only say at the end. Empty when some host fits (or no host has reported yet: the API decides then).
 */
export function machineShortfall(free: Free[], vcpu: number, memMib: number): Record<string, string> {
  if (free.length === 0 || !Number.isFinite(vcpu) || !Number.isFinite(memMib)) return {};
  if (free.some((f) => f.vcpu >= vcpu && f.memMib >= memMib)) return {};
  const out: Record<string, string> = {};
  const mostCpu = free.reduce((a, b) => (b.vcpu > a.vcpu ? b : a));
  const mostMem = free.reduce((a, b) => (b.memMib > a.memMib ? b : a));
  const where = (f: Free) => (free.length > 1 ? `the most on a host is ${f.host}'s` : `host ${f.host} has`);
  if (mostCpu.vcpu < vcpu) out.vcpu = `not enough vCPU: ${vcpu} asked, ${where(mostCpu)} ${mostCpu.vcpu} free`;
  if (mostMem.memMib < memMib)
    out.mem_mib = `not enough memory: ${formatMib(memMib)} asked, ${where(mostMem)} ${formatMib(mostMem.memMib)} free`;
  if (!out.vcpu && !out.mem_mib)
    out.mem_mib = `no single host has both ${vcpu} vCPU and ${formatMib(memMib)} free (the hosts with enough vCPU have less memory)`;
  return out;
}

/** The Boot source step's check: the root filesystem copy must fit on some host's disk. */
export function diskShortfall(free: Free[], rootfsBytes: number | null | undefined): Record<string, string> {
  if (free.length === 0 || !rootfsBytes) return {};
  const most = free.reduce((a, b) => (b.diskBytes > a.diskBytes ? b : a));
  if (most.diskBytes >= rootfsBytes) return {};
  return {
    rootfs_image_id: `not enough disk: the root filesystem needs ${formatBytes(rootfsBytes)}, the most free on a host is ${formatBytes(most.diskBytes)} (${most.host})`,
  };
}
