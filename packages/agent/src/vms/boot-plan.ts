import type { AgentNic, AgentVmSpec } from '@nqvm/api';
import { parseCidr } from '../net/index.ts';
import type { DriveSpec, NicSpec, VmLaunchSpec } from '../vmm/types.ts';

/** The bridge address a NIC's network uses: `<gateway>/<prefix of the NIC's address>`. */
export function bridgeAddress(nic: AgentNic): string {
  return `${nic.gateway}/${parseCidr(nic.ip).prefix}`;
}

/** The kernel's static `ip=` for eth0, which the demo rootfs (and any IP_PNP kernel) applies at boot. */
export function kernelIpArg(nic: AgentNic, hostname: string): string {
  const c = parseCidr(nic.ip);
  return `ip=${c.address}::${nic.gateway}:${c.netmask}:${hostname}:eth0:off`;
}

export function kernelArgs(spec: AgentVmSpec): string {
  const first = spec.nics[0];
  return ['console=ttyS0 reboot=k panic=-1', first ? kernelIpArg(first, spec.guest.hostname) : '', spec.boot_args]
    .filter((s) => s.trim())
    .join(' ');
}

export interface LaunchInputs {
  kernel: string;
  initrd?: string;
  rootfs: string;
  tools?: string;
  taps: string[];
}

/** Resolves the manager's spec into the driver's launch spec: local paths, TAP names, drive order. */
export function launchSpec(spec: AgentVmSpec, inputs: LaunchInputs): VmLaunchSpec {
  const drives: DriveSpec[] = [
    {
      drive_id: 'rootfs',
      path: inputs.rootfs,
      is_root_device: true,
      is_read_only: false,
      cache_type: 'Writeback',
      io_engine: 'Sync',
    },
  ];
  if (inputs.tools)
    drives.push({
      drive_id: 'tools',
      path: inputs.tools,
      is_root_device: false,
      is_read_only: true,
      cache_type: 'Writeback',
      io_engine: 'Sync',
    });
  const nics: NicSpec[] = spec.nics.map((n, i) => ({
    iface_id: n.iface_id,
    tap: inputs.taps[i] ?? '',
    mac: n.mac,
    // QEMU has no NIC limiter of its own: the agent shapes its TAP with tc instead.
    ...(spec.vmm === 'firecracker' && n.rx_rate_limiter ? { rx_rate_limiter: n.rx_rate_limiter } : {}),
    ...(spec.vmm === 'firecracker' && n.tx_rate_limiter ? { tx_rate_limiter: n.tx_rate_limiter } : {}),
  }));
  return {
    vm_id: spec.vm_id,
    vcpu: spec.vcpu,
    mem_mib: spec.mem_mib,
    smt: spec.smt,
    cpu_template: spec.cpu_template,
    kernel_path: inputs.kernel,
    ...(inputs.initrd ? { initrd_path: inputs.initrd } : {}),
    boot_args: kernelArgs(spec),
    drives,
    nics,
  };
}
