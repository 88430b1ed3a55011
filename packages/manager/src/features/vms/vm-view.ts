import type { Vm } from '@nqvm/api';
import type { NicRow, VmRow } from './vms.repository.ts';

export function toVm(r: VmRow, nics: NicRow[], gateways: Map<string, string>): Vm {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    state: r.state,
    host_id: r.hostId,
    vmm: r.vmm,
    vcpu: r.vcpu,
    mem_mib: r.memMib,
    smt: r.smt,
    cpu_template: r.cpuTemplate,
    kernel_image_id: r.kernelImageId,
    initrd_image_id: r.initrdImageId,
    rootfs_image_id: r.rootfsImageId,
    boot_args: r.bootArgs,
    nics: nics.map((n) => ({
      iface_id: n.ifaceId,
      network: n.network,
      mac: n.mac,
      ip: n.ip,
      gateway: gateways.get(n.network) ?? '',
      tap: null,
    })),
    guest_ip: r.guestIp,
    tags: r.tags,
    owner: r.owner,
    environment: r.environment,
    restart_policy: r.restartPolicy,
    username: r.username,
    template_id: r.templateId,
    source_snapshot_id: r.sourceSnapshotId,
    pid: r.pid,
    last_error: r.lastError,
    restart_count: r.restartCount,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
    booted_at: r.bootedAt?.toISOString() ?? null,
    guest_ready_at: r.guestReadyAt?.toISOString() ?? null,
  };
}
