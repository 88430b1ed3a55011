import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentVmSpec } from '@nqvm/api';
import type { VmPaths } from '../vmm/types.ts';
import { AgentError } from './errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** VM ids reach paths and argv; only canonical lower-case UUIDs are accepted. */
export function assertVmId(id: string): string {
  if (!UUID.test(id))
    throw new AgentError(400, 'invalid_vm_id', `not a VM id: ${JSON.stringify(id)}`, { field: 'params.id' });
  return id;
}

export interface VmFiles extends VmPaths {
  rootfs: string;
  spec: string;
  /** Run bookkeeping that survives an agent restart (boot time, log offsets, whether it should be running). */
  run: string;
  /** The unprivileged user the VM's VMM runs as. */
  vmmUser: string;
  /** Present while a snapshot save holds a running VM paused: an agent that finds it when it starts resumes the VM. */
  pausedForSave: string;
}

export function vmFiles(dataDir: string, id: string): VmFiles {
  const dir = join(dataDir, 'vms', assertVmId(id));
  return {
    dir,
    pidFile: join(dir, 'vmm.pid'),
    controlSocket: join(dir, 'control.sock'),
    consoleSocket: join(dir, 'console.sock'),
    consoleLog: join(dir, 'console.log'),
    vmmLog: join(dir, 'vmm.log'),
    rootfs: join(dir, 'rootfs.ext4'),
    spec: join(dir, 'spec.json'),
    run: join(dir, 'run.json'),
    vmmUser: join(dir, 'vmm-user.json'),
    pausedForSave: join(dir, 'paused-for-save'),
  };
}

export interface RunInfo {
  booted_at: string | null;
  /** True from launch until the agent itself stopped the VM: a dead VMM with this set died on its own. */
  should_run: boolean;
  console_offset: number;
  vmm_log_offset: number;
}

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}

/** The spec holds the guest's password and token: owner-only. */
export function writeSpec(f: VmFiles, spec: AgentVmSpec): Promise<void> {
  return writeAtomic(f.spec, `${JSON.stringify(spec, null, 2)}\n`, 0o600);
}

export async function readSpec(f: VmFiles): Promise<AgentVmSpec | undefined> {
  try {
    return JSON.parse(await readFile(f.spec, 'utf8')) as AgentVmSpec;
  } catch {
    return undefined;
  }
}

export function writeRun(f: VmFiles, run: RunInfo): Promise<void> {
  return writeAtomic(f.run, `${JSON.stringify(run)}\n`, 0o600);
}

export async function readRun(f: VmFiles): Promise<RunInfo> {
  try {
    return JSON.parse(await readFile(f.run, 'utf8')) as RunInfo;
  } catch {
    return { booted_at: null, should_run: false, console_offset: 0, vmm_log_offset: 0 };
  }
}
