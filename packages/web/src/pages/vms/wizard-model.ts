import type { CreateVmRequest } from '@nqvm/api';
import { DEVICE_FIELD_STEP, type DeviceForm, deviceSteps, EMPTY_DEVICES, validateDevices } from './wizard-devices.ts';

export const STEPS = ['Basics', 'Credentials', 'Machine', 'Boot source', 'Network', 'Advanced', 'Review'] as const;
export type Step = (typeof STEPS)[number];

/** The wizard's form state: strings as typed, converted to the API request only on submit. */
export interface WizardForm extends DeviceForm {
  name: string;
  description: string;
  owner: string;
  environment: string;
  tags: string;
  username: string;
  password: string;
  ssh_keys: string;
  vcpu: string;
  mem_mib: string;
  vmm: '' | 'qemu' | 'firecracker';
  smt: boolean;
  cpu_template: '' | 'C3' | 'T2' | 'T2S' | 'T2CL' | 'T2A' | 'None';
  kernel_image_id: string;
  initrd_image_id: string;
  rootfs_image_id: string;
  boot_args: string;
  network: string;
  no_network: boolean;
  mac_mode: 'auto' | 'given';
  mac: string;
  restart_policy: '' | 'never' | 'on-failure' | 'always';
  host_id: string;
  start: boolean;
}

export const EMPTY_FORM: WizardForm = {
  name: '',
  description: '',
  owner: '',
  environment: '',
  tags: '',
  username: 'root',
  password: '',
  ssh_keys: '',
  vcpu: '1',
  mem_mib: '256',
  vmm: '',
  smt: false,
  cpu_template: '',
  kernel_image_id: '',
  initrd_image_id: '',
  rootfs_image_id: '',
  boot_args: '',
  network: 'default',
  no_network: false,
  mac_mode: 'auto',
  mac: '',
  restart_policy: '',
  host_id: '',
  start: true,
  ...EMPTY_DEVICES,
};

/** Which step shows a given request field, so an API error can send the user to it. */
export const FIELD_STEP: Record<string, Step> = {
  name: 'Basics',
  description: 'Basics',
  owner: 'Basics',
  environment: 'Basics',
  tags: 'Basics',
  username: 'Credentials',
  password: 'Credentials',
  ssh_authorized_keys: 'Credentials',
  vcpu: 'Machine',
  mem_mib: 'Machine',
  vmm: 'Machine',
  smt: 'Machine',
  cpu_template: 'Machine',
  kernel_image_id: 'Boot source',
  initrd_image_id: 'Boot source',
  rootfs_image_id: 'Boot source',
  boot_args: 'Boot source',
  network: 'Network',
  mac: 'Network',
  restart_policy: 'Advanced',
  host_id: 'Advanced',
  host_labels: 'Advanced',
  start: 'Advanced',
  ...DEVICE_FIELD_STEP,
};

/** Top-level field of an error path (`ssh_authorized_keys.0` → `ssh_authorized_keys`). */
export function topField(field: string): string {
  return field.split('.')[0] ?? field;
}

/** Checks mirroring the API's schema, so most mistakes are caught before a round trip. */
export function validate(f: WizardForm): Record<string, string> {
  const e: Record<string, string> = {};
  if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/.test(f.name))
    e.name = 'letters, digits, dot, dash, underscore; starts with a letter or digit (max 63)';
  for (const t of splitList(f.tags)) if (!/^[a-zA-Z0-9._:/=-]{1,63}$/.test(t)) e.tags = `invalid tag "${t}"`;
  if (f.username && !/^[a-z_][a-z0-9_-]{0,31}$/.test(f.username)) e.username = 'lower-case letters, digits, _ and -';
  for (const k of lines(f.ssh_keys))
    if (!/^(ssh-|ecdsa-|sk-)\S/.test(k) || k.length < 16)
      e.ssh_authorized_keys = 'each line must be an OpenSSH public key';
  const vcpu = Number(f.vcpu);
  if (!Number.isInteger(vcpu) || vcpu < 1 || vcpu > 32) e.vcpu = 'between 1 and 32';
  const mem = Number(f.mem_mib);
  if (!Number.isInteger(mem) || mem < 128 || mem > 65536) e.mem_mib = 'between 128 and 65536 MiB';
  if (!f.kernel_image_id) e.kernel_image_id = 'choose a kernel';
  if (!f.rootfs_image_id) e.rootfs_image_id = 'choose a root filesystem';
  if (!/^[\x20-\x7e]*$/.test(f.boot_args)) e.boot_args = 'printable ASCII only';
  if (!f.no_network && f.network && !/^[a-z0-9][a-z0-9-]{0,31}$/.test(f.network))
    e.network = 'lower-case letters, digits and dashes';
  if (!f.no_network && f.mac_mode === 'given' && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(f.mac))
    e.mac = 'lower-case MAC like 02:00:00:00:00:01';
  return { ...validateDevices(f, { memMib: mem, network: !f.no_network }), ...e };
}

export function toRequest(f: WizardForm): CreateVmRequest {
  const tags = splitList(f.tags);
  const keys = lines(f.ssh_keys);
  return {
    name: f.name,
    vcpu: Number(f.vcpu),
    mem_mib: Number(f.mem_mib),
    kernel_image_id: f.kernel_image_id,
    rootfs_image_id: f.rootfs_image_id,
    ...(f.description ? { description: f.description } : {}),
    ...(f.owner ? { owner: f.owner } : {}),
    ...(f.environment ? { environment: f.environment } : {}),
    ...(tags.length ? { tags } : {}),
    ...(f.username ? { username: f.username } : {}),
    ...(f.password ? { password: f.password } : {}),
    ...(keys.length ? { ssh_authorized_keys: keys } : {}),
    ...(f.vmm ? { vmm: f.vmm } : {}),
    ...(f.smt ? { smt: true } : {}),
    ...(f.cpu_template ? { cpu_template: f.cpu_template } : {}),
    ...(f.initrd_image_id ? { initrd_image_id: f.initrd_image_id } : {}),
    ...(f.boot_args ? { boot_args: f.boot_args } : {}),
    ...(f.no_network ? { network: null } : f.network ? { network: f.network } : {}),
    ...(f.mac_mode === 'given' && f.mac && !f.no_network ? { mac: f.mac } : {}),
    ...(f.restart_policy ? { restart_policy: f.restart_policy } : {}),
    ...(f.host_id ? { host_id: f.host_id } : {}),
    // Devices go in with their own requests while the VM is still stopped; the wizard boots it afterwards.
    start: f.start && !hasDeviceSteps(f),
  };
}

export function hasDeviceSteps(f: WizardForm): boolean {
  return deviceSteps(f, { network: !f.no_network }).length > 0;
}

export function splitList(s: string): string[] {
  return [...new Set(s.split(/[\s,]+/).filter(Boolean))];
}

function lines(s: string): string[] {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
