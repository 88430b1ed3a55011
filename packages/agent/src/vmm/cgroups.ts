import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CgroupJoin } from '../host/exec.ts';

export interface VmmLimits {
  vcpu: number;
  /** What the VMM may use in all: guest RAM plus its own overhead. */
  memoryBytes: number;
  /** Character devices (major, minor) the VMM may open; v1 only (v2 needs an eBPF program for this). */
  devices: ReadonlyArray<readonly [number, number]>;
}

export type CgroupLayout = { version: 2; root: string } | { version: 1; root: string; devices: boolean };

const PERIOD_US = 100_000;
const V1_CONTROLLERS = ['cpu', 'memory'] as const;

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** cgroup v2 when it is mounted with the cpu and memory controllers at the root, else v1's cpu and memory; or none. */
export async function detectCgroups(root = '/sys/fs/cgroup'): Promise<CgroupLayout | null> {
  const controllers = await readFile(join(root, 'cgroup.controllers'), 'utf8').catch(() => null);
  if (controllers !== null) {
    const have = controllers.trim().split(/\s+/);
    return have.includes('cpu') && have.includes('memory') ? { version: 2, root } : null;
  }
  if (
    (await exists(join(root, 'cpu', 'cpu.cfs_quota_us'))) &&
    (await exists(join(root, 'memory', 'memory.limit_in_bytes')))
  )
    return { version: 1, root, devices: await exists(join(root, 'devices', 'devices.allow')) };
  return null;
}

/** Where this process sits in each hierarchy (`/proc/self/cgroup`): v1 controller → path, and `''` → the v2 path. */
async function ownCgroups(procSelf: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of (await readFile(join(procSelf, 'cgroup'), 'utf8')).split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(',')) out.set(c, m[2]!);
  }
  return out;
}

/**
 * One cgroup per VMM, named by its VM, under `nqvm/`: CPU quota of its vCPUs, its memory limit and (v1) the device
 * nodes it may open. Created before the launch, removed once the VMM is gone.
 */
export class VmmCgroups {
  constructor(
    readonly layout: CgroupLayout,
    private readonly procSelf = '/proc/self',
  ) {}

  /** The VM's cgroup directory in each hierarchy used. */
  dirs(vmId: string): string[] {
    const { layout } = this;
    if (layout.version === 2) return [join(layout.root, 'nqvm', vmId)];
    const names = layout.devices ? [...V1_CONTROLLERS, 'devices'] : V1_CONTROLLERS;
    return names.map((c) => join(layout.root, c, 'nqvm', vmId));
  }

  /** Creates (or refreshes) the VM's cgroup with its limits; returns what the launcher joins. */
  async create(vmId: string, limits: VmmLimits): Promise<CgroupJoin[]> {
    const { layout } = this;
    const own = await ownCgroups(this.procSelf);
    const quota = `${Math.round(limits.vcpu * PERIOD_US)}`;
    const memory = `${limits.memoryBytes}`;
    if (layout.version === 2) {
      const parent = join(layout.root, 'nqvm');
      await mkdir(parent, { recursive: true });
      // Controllers reach a child only when every ancestor delegates them.
      await writeFile(join(layout.root, 'cgroup.subtree_control'), '+cpu +memory');
      await writeFile(join(parent, 'cgroup.subtree_control'), '+cpu +memory');
      const dir = join(parent, vmId);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
      await writeFile(join(dir, 'memory.max'), memory);
      await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined);
      return [{ procs: join(dir, 'cgroup.procs'), home: join(layout.root, own.get('') ?? '/', 'cgroup.procs') }];
    }
    const joins: CgroupJoin[] = [];
    const at = async (controller: string, settings: Array<[string, string]>) => {
      const dir = join(layout.root, controller, 'nqvm', vmId);
      await mkdir(dir, { recursive: true });
      for (const [file, value] of settings) await writeFile(join(dir, file), value);
      joins.push({
        procs: join(dir, 'cgroup.procs'),
        home: join(layout.root, controller, own.get(controller) ?? '/', 'cgroup.procs'),
      });
    };
    await at('cpu', [
      ['cpu.cfs_period_us', `${PERIOD_US}`],
      ['cpu.cfs_quota_us', quota],
    ]);
    await at('memory', [['memory.limit_in_bytes', memory]]);
    if (layout.devices)
      await at('devices', [
        ['devices.deny', 'a'],
        ...limits.devices.map(([major, minor]): [string, string] => ['devices.allow', `c ${major}:${minor} rwm`]),
      ]);
    return joins;
  }

  /** The limits the VM's cgroup holds (what the kernel enforces). */
  async read(vmId: string): Promise<{ cpuQuotaUs: number; cpuPeriodUs: number; memoryBytes: number }> {
    const { layout } = this;
    const num = async (path: string) => Number((await readFile(path, 'utf8')).trim().split(/\s+/)[0]);
    if (layout.version === 2) {
      const dir = join(layout.root, 'nqvm', vmId);
      const [quota, period] = (await readFile(join(dir, 'cpu.max'), 'utf8')).trim().split(/\s+/);
      return {
        cpuQuotaUs: Number(quota),
        cpuPeriodUs: Number(period),
        memoryBytes: await num(join(dir, 'memory.max')),
      };
    }
    const cpu = join(layout.root, 'cpu', 'nqvm', vmId);
    return {
      cpuQuotaUs: await num(join(cpu, 'cpu.cfs_quota_us')),
      cpuPeriodUs: await num(join(cpu, 'cpu.cfs_period_us')),
      memoryBytes: await num(join(layout.root, 'memory', 'nqvm', vmId, 'memory.limit_in_bytes')),
    };
  }

  /**
   * Removes the VM's cgroup. A VMM just killed may stay in it until its parent reaps it (EBUSY): that is waited for
   * up to `waitMs`; a cgroup still busy after that, or already gone, is left as it is.
   */
  async remove(vmId: string, waitMs = 2000): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (const dir of this.dirs(vmId)) {
      for (;;) {
        const err = await rmdir(dir).then(
          () => null,
          (e: NodeJS.ErrnoException) => e,
        );
        if (err?.code !== 'EBUSY' || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}
