import { readFile, writeFile } from 'node:fs/promises';
import { assertVmmUser, type VmmUser } from '../vmm/confine.ts';
import type { VmFiles } from './layout.ts';

/** The reserved range VMM users are taken from: `base` … `base + count - 1`, the same number as uid and gid. */
export interface VmmUserRange {
  base: number;
  count: number;
}

export const DEFAULT_VMM_USERS: VmmUserRange = { base: 900_000, count: 65_536 };

function hash(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * One unprivileged user per VM, recorded in its directory (`vmm-user.json`) so that a restarted agent and every later
 * boot of the VM use the same one. A VM's first pick is derived from its id (so agents sharing a machine rarely
 * collide), the next free one after it when taken here.
 */
export class VmmUsers {
  private readonly byVm = new Map<string, number>();
  private readonly taken = new Set<number>();

  constructor(private readonly range: VmmUserRange = DEFAULT_VMM_USERS) {
    if (!Number.isInteger(range.base) || !Number.isInteger(range.count) || range.base < 1 || range.count < 1)
      throw new RangeError(`not a user range: ${range.base}+${range.count}`);
  }

  /** The VM's recorded user, else a free one (kept in memory until `record`). */
  async of(vmId: string, files: VmFiles): Promise<VmmUser> {
    const known = this.byVm.get(vmId);
    if (known !== undefined) return { uid: known, gid: known };
    const recorded = await this.read(files);
    if (recorded) return this.hold(vmId, recorded.uid);
    const first = hash(vmId) % this.range.count;
    for (let i = 0; i < this.range.count; i++) {
      const uid = this.range.base + ((first + i) % this.range.count);
      if (!this.taken.has(uid)) return this.hold(vmId, uid);
    }
    throw new Error(`no free VMM user left in ${this.range.base}+${this.range.count}`);
  }

  /** Marks a VM's recorded user as taken (a restarted agent, before any new VM gets one). */
  async adopt(vmId: string, files: VmFiles): Promise<void> {
    const recorded = await this.read(files);
    if (recorded) this.hold(vmId, recorded.uid);
  }

  /** Writes the VM's user into its directory (which must exist). */
  async record(files: VmFiles, user: VmmUser): Promise<void> {
    await writeFile(files.vmmUser, `${JSON.stringify(user)}\n`, { mode: 0o600 });
  }

  free(vmId: string): void {
    const uid = this.byVm.get(vmId);
    if (uid === undefined) return;
    this.byVm.delete(vmId);
    this.taken.delete(uid);
  }

  private hold(vmId: string, uid: number): VmmUser {
    this.byVm.set(vmId, uid);
    this.taken.add(uid);
    return { uid, gid: uid };
  }

  private async read(files: VmFiles): Promise<VmmUser | undefined> {
    try {
      return assertVmmUser(JSON.parse(await readFile(files.vmmUser, 'utf8')) as VmmUser);
    } catch {
      return undefined;
    }
  }
}
