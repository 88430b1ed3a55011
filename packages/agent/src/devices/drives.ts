import { link, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentDrive, AgentVmSpec } from '@nqvm/api';
import { type CommandRunner, runChecked } from '../host/exec.ts';
import { copyImage } from '../rootfs/index.ts';
import type { DriveSpec, VmLaunchSpec } from '../vmm/types.ts';
import { seedDrive, writeSeed } from './cloud-init.ts';

const DRIVE_ID = /^[a-z][a-z0-9_]{0,15}$/;
const RESERVED = new Set(['rootfs', 'tools']);
const DRIVE_FILE = /^drive-([a-z][a-z0-9_]{0,15})\.img$/;

/** Drive ids become file names and QEMU ids: strict pattern, reserved names refused. */
export function assertDriveId(id: string): string {
  if (!DRIVE_ID.test(id) || RESERVED.has(id)) throw new RangeError(`not a drive id: ${JSON.stringify(id)}`);
  return id;
}

/** The drive's own file in the VM directory. */
export function drivePath(vmDir: string, driveId: string): string {
  return join(vmDir, `drive-${assertDriveId(driveId)}.img`);
}

export interface DriveSources {
  runner: CommandRunner;
  /** Local path of a cached image (fetched from the manager when missing). */
  image(ref: NonNullable<AgentDrive['image']>): Promise<string>;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * Creates each drive's file once (a sparse blank ext4, or a copy of its image) and removes the files of
 * drives no longer in the spec. Existing files are kept: a drive's data survives restarts.
 */
export async function prepareDrives(src: DriveSources, vmDir: string, drives: readonly AgentDrive[]): Promise<void> {
  const wanted = new Set(drives.map((d) => assertDriveId(d.drive_id)));
  for (const name of await readdir(vmDir).catch(() => [] as string[])) {
    const id = DRIVE_FILE.exec(name)?.[1];
    if (id && !wanted.has(id)) await rm(join(vmDir, name), { force: true });
  }
  for (const d of drives) {
    const file = drivePath(vmDir, d.drive_id);
    if (await exists(file)) continue;
    const tmp = `${file}.tmp`;
    if (d.image) {
      await copyImage(src.runner, await src.image(d.image), tmp);
    } else {
      const size = d.size_mib ?? 0;
      if (!Number.isInteger(size) || size < 1) throw new RangeError(`drive ${d.drive_id} needs size_mib or an image`);
      await runChecked(src.runner, 'truncate', ['-s', `${size}M`, '--', tmp]);
      await runChecked(src.runner, 'mkfs.ext4', ['-q', '-F', '-L', d.drive_id, '--', tmp]);
    }
    await runChecked(src.runner, 'mv', ['-f', '--', tmp, file]);
  }
}

/** Adds the spec's extra drives and devices to the launch spec built from the base VM. */
export function withDevices(launch: VmLaunchSpec, spec: AgentVmSpec, vmDir: string): VmLaunchSpec {
  const extra: DriveSpec[] = (spec.drives ?? []).map((d) => ({
    drive_id: d.drive_id,
    path: drivePath(vmDir, d.drive_id),
    is_root_device: false,
    is_read_only: d.is_read_only,
    cache_type: d.cache_type,
    io_engine: d.io_engine,
    ...(d.rate_limiter ? { rate_limiter: d.rate_limiter } : {}),
  }));
  return {
    ...launch,
    drives: [...launch.drives, ...extra, ...(spec.guest.cloud_init ? [seedDrive(vmDir)] : [])],
    ...(spec.balloon ? { balloon: spec.balloon } : {}),
    ...(spec.entropy ? { entropy: spec.entropy } : {}),
    ...(spec.vsock ? { vsock: spec.vsock } : {}),
    ...(spec.logger?.level === 'Info' ? { log_items: ['guest_errors', 'unimp'] } : {}),
  };
}

const SERIAL_FILE = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}\.log$/;
const RESERVED_FILES = new Set(['console.log', 'vmm.log']);

/**
 * The serial output file is a hard link to the console log QEMU appends to, so it receives the same
 * bytes; only plain names inside the VM directory are accepted, never a host path.
 */
export async function linkSerialOutput(consoleLog: string, vmDir: string, name: string | undefined): Promise<void> {
  if (name === undefined) return;
  if (!SERIAL_FILE.test(name) || RESERVED_FILES.has(name)) throw new RangeError(`not a serial file name: ${name}`);
  const target = join(vmDir, name);
  await (await open(consoleLog, 'a')).close();
  await rm(target, { force: true });
  await link(consoleLog, target);
}

/** Everything the spec's devices need on disk before launch. */
export async function prepareDevices(
  src: DriveSources,
  files: { dir: string; consoleLog: string },
  spec: AgentVmSpec,
): Promise<void> {
  await prepareDrives(src, files.dir, spec.drives ?? []);
  if (spec.guest.cloud_init) await writeSeed(src.runner, files.dir, spec);
  await linkSerialOutput(files.consoleLog, files.dir, spec.serial?.serial_out_path);
}
