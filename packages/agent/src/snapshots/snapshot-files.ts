import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentVmSpec } from '@nqvm/api';
import { AgentError } from '../vms/errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Snapshot ids reach paths and QEMU's `exec:` migration URI: canonical lower-case UUIDs only. */
export function assertSnapshotId(id: string): string {
  if (!UUID.test(id))
    throw new AgentError(400, 'invalid_snapshot_id', `not a snapshot id: ${JSON.stringify(id)}`, {
      field: 'params.snapshot_id',
    });
  return id;
}

export interface SnapshotFiles {
  dir: string;
  /** QEMU's migration stream: RAM and device state. */
  state: string;
  /** The VM's root disk as it was at the pause. */
  disk: string;
  /** The source VM's agent spec (its old IP and guest token are needed to re-identify an instance). */
  spec: string;
}

/** Snapshots live outside any VM directory so that deleting the source VM leaves them intact. */
export function snapshotFiles(dataDir: string, id: string): SnapshotFiles {
  const dir = join(dataDir, 'snapshots', assertSnapshotId(id));
  return {
    dir,
    state: join(dir, 'state.bin'),
    disk: join(dir, 'rootfs.ext4'),
    spec: join(dir, 'spec.json'),
  };
}

export function writeSnapshotSpec(f: SnapshotFiles, spec: AgentVmSpec): Promise<void> {
  return writeFile(f.spec, `${JSON.stringify(spec)}\n`, { mode: 0o600 });
}

export async function readSnapshotSpec(f: SnapshotFiles): Promise<AgentVmSpec> {
  try {
    return JSON.parse(await readFile(f.spec, 'utf8')) as AgentVmSpec;
  } catch {
    throw new AgentError(404, 'snapshot_not_found', `no snapshot files at ${f.dir}`);
  }
}

/** Bytes the file really occupies (a sparse or reflinked copy is smaller than its length). */
export async function allocatedBytes(path: string): Promise<number> {
  const s = await stat(path).catch(() => undefined);
  return s ? s.blocks * 512 : 0;
}
