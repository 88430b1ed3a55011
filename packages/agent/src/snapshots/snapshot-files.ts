import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentVmSpec, SnapshotType } from '@nqvm/api';
import { AgentError } from '../vms/errors.ts';
import type { RamLayer } from './ram-layers.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Snapshot ids reach paths: canonical lower-case UUIDs only. */
export function assertSnapshotId(id: string): string {
  if (!UUID.test(id))
    throw new AgentError(400, 'invalid_snapshot_id', `not a snapshot id: ${JSON.stringify(id)}`, {
      field: 'params.snapshot_id',
    });
  return id;
}

export interface SnapshotFiles {
  dir: string;
  /** QEMU's migration stream: device state only (guest RAM is in `ram`, migrated with x-ignore-shared). */
  state: string;
  /** Guest RAM: every page (Full) or the pages changed since the parent (Diff, marked in `ramMap`). */
  ram: string;
  ramMap: string;
  /** Type and parent (`SnapshotMeta`). */
  meta: string;
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
    ram: join(dir, 'ram.img'),
    ramMap: join(dir, 'ram.map'),
    meta: join(dir, 'meta.json'),
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

export interface SnapshotMeta {
  snapshot_type: SnapshotType;
  parent_id: string | null;
}

export function writeSnapshotMeta(f: SnapshotFiles, meta: SnapshotMeta): Promise<void> {
  return writeFile(f.meta, `${JSON.stringify(meta)}\n`, { mode: 0o600 });
}

/** Snapshots saved before RAM layers existed have no meta: they are Full and unusable for restore. */
export async function readSnapshotMeta(f: SnapshotFiles): Promise<SnapshotMeta> {
  try {
    return JSON.parse(await readFile(f.meta, 'utf8')) as SnapshotMeta;
  } catch {
    throw new AgentError(404, 'snapshot_not_found', `no snapshot metadata at ${f.dir}`);
  }
}

/** The RAM layers from the Full snapshot at the bottom up to `id` itself. */
export async function ramChain(dataDir: string, id: string): Promise<RamLayer[]> {
  const chain: RamLayer[] = [];
  let cur: string | null = id;
  while (cur) {
    const f = snapshotFiles(dataDir, cur);
    const meta = await readSnapshotMeta(f);
    chain.unshift(meta.snapshot_type === 'Diff' ? { data: f.ram, map: f.ramMap } : { data: f.ram });
    if (chain.length > 1000) throw new AgentError(500, 'snapshot_chain_loop', `snapshot chain of ${id} loops`);
    cur = meta.snapshot_type === 'Diff' ? meta.parent_id : null;
  }
  return chain;
}

/** Snapshots in this agent's store whose parent is `id`. */
export async function childrenOf(dataDir: string, id: string): Promise<string[]> {
  const names = await readdir(join(dataDir, 'snapshots')).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names) {
    if (!UUID.test(n) || n === id) continue;
    const meta = await readSnapshotMeta(snapshotFiles(dataDir, n)).catch(() => undefined);
    if (meta?.parent_id === id) out.push(n);
  }
  return out;
}

/** Bytes the file really occupies (a sparse or reflinked copy is smaller than its length). */
export async function allocatedBytes(path: string): Promise<number> {
  const s = await stat(path).catch(() => undefined);
  return s ? s.blocks * 512 : 0;
}
