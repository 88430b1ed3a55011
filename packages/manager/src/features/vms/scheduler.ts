import type { HostCapabilities, HostCapacity, VmmKind } from '@nqvm/api';
import { NoCapacity } from '../../domain/errors.ts';

export interface Candidate {
  id: string;
  name: string;
  healthy: boolean;
  capacity: HostCapacity | null;
  capabilities: HostCapabilities | null;
  labels: Record<string, string>;
  allocated: { vcpu: number; mem_mib: number };
}

export interface PlacementRequest {
  vcpu: number;
  mem_mib: number;
  vmm: VmmKind;
  host_id?: string;
  host_labels?: Record<string, string>;
}

export interface Overcommit {
  cpu: number;
  mem: number;
}

/** Why a host cannot take the VM, or null when it can. */
export function rejectReason(h: Candidate, req: PlacementRequest, oc: Overcommit): string | null {
  if (req.host_id && h.id !== req.host_id) return 'not the requested host';
  if (!h.healthy) return 'unreachable (no recent heartbeat)';
  if (!h.capacity || !h.capabilities) return 'has not reported capacity yet';
  if (!h.capabilities.vmm.includes(req.vmm))
    return `cannot run ${req.vmm} (runs: ${h.capabilities.vmm.join(', ') || 'none'})`;
  for (const [k, v] of Object.entries(req.host_labels ?? {}))
    if (h.labels[k] !== v) return `label ${k}=${v} does not match`;
  const cpuFree = h.capacity.cpus * oc.cpu - h.allocated.vcpu;
  if (req.vcpu > cpuFree) return `not enough vCPU (${Math.max(0, cpuFree)} free, ${req.vcpu} asked)`;
  const memFree = Math.floor(h.capacity.memory_mib * oc.mem) - h.allocated.mem_mib;
  if (req.mem_mib > memFree) return `not enough memory (${Math.max(0, memFree)} MiB free, ${req.mem_mib} asked)`;
  return null;
}

/** Picks the fitting host with the most free memory (spreads VMs); a typed error says why none fits. */
export function place(hosts: Candidate[], req: PlacementRequest, oc: Overcommit): Candidate {
  const reasons: Record<string, string> = {};
  const fits: Candidate[] = [];
  for (const h of hosts) {
    const why = rejectReason(h, req, oc);
    if (why) reasons[h.name] = why;
    else fits.push(h);
  }
  if (fits.length === 0) {
    const summary = hosts.length === 0 ? 'no hosts are registered' : 'no host can take this VM';
    throw new NoCapacity(summary, reasons);
  }
  const free = (h: Candidate) => (h.capacity?.memory_mib ?? 0) * oc.mem - h.allocated.mem_mib;
  return fits.sort((a, b) => free(b) - free(a))[0]!;
}
