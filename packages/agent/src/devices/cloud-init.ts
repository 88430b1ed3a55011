import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentVmSpec } from '@nqvm/api';
import { type CommandRunner, runChecked } from '../host/exec.ts';
import { parseCidr } from '../net/index.ts';
import type { DriveSpec } from '../vmm/types.ts';

/** The NoCloud seed drive's file in the VM directory; its volume label `cidata` is how cloud-init finds it. */
export const SEED_FILE = 'cidata.iso';

/**
 * The NoCloud files: meta-data (instance-id = the VM id, local-hostname, then the user's keys), user-data as
 * given, and a v2 network-config giving each NIC, matched by MAC, the address nqvm allocated. JSON is YAML, so
 * no YAML writer is needed.
 */
export function seedFiles(spec: AgentVmSpec): Record<'meta-data' | 'user-data' | 'network-config', string> {
  const ci = spec.guest.cloud_init ?? {};
  const meta = { ...(ci.meta_data ?? {}), 'instance-id': spec.vm_id, 'local-hostname': spec.guest.hostname };
  const ethernets: Record<string, unknown> = {};
  for (const n of spec.nics) {
    const primary = n.iface_id === 'eth0';
    ethernets[n.iface_id] = {
      match: { macaddress: n.mac },
      'set-name': n.iface_id,
      addresses: [`${parseCidr(n.ip).address}/${parseCidr(n.ip).prefix}`],
      ...(primary ? { routes: [{ to: '0.0.0.0/0', via: n.gateway }] } : {}),
    };
  }
  return {
    'meta-data': `${JSON.stringify(meta, null, 2)}\n`,
    // cloud-init reads an empty user-data as "nothing to do"; a bare `#cloud-config` says the same explicitly.
    'user-data': ci.user_data ?? '#cloud-config\n',
    'network-config': `${JSON.stringify({ version: 2, ethernets }, null, 2)}\n`,
  };
}

/** Writes the seed drive (ISO 9660 with Rock Ridge and Joliet, label `cidata`) with genisoimage: no loop mount. */
export async function writeSeed(runner: CommandRunner, vmDir: string, spec: AgentVmSpec): Promise<void> {
  const staging = join(vmDir, 'cidata.d');
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { mode: 0o700 });
  try {
    const files = seedFiles(spec);
    const paths: string[] = [];
    for (const [name, text] of Object.entries(files)) {
      const p = join(staging, name);
      await writeFile(p, text, { mode: 0o600 });
      paths.push(p);
    }
    const tmp = join(vmDir, `${SEED_FILE}.tmp`);
    await runChecked(runner, 'genisoimage', [
      '-quiet',
      '-output',
      tmp,
      '-volid',
      'cidata',
      '-joliet',
      '-rock',
      ...paths,
    ]);
    await runChecked(runner, 'mv', ['-f', '--', tmp, join(vmDir, SEED_FILE)]);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The read-only seed drive, last so it moves no other drive's device name. */
export function seedDrive(vmDir: string): DriveSpec {
  return {
    drive_id: 'cidata',
    path: join(vmDir, SEED_FILE),
    is_root_device: false,
    is_read_only: true,
    cache_type: 'Writeback',
    io_engine: 'Sync',
  };
}
