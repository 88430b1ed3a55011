/**
 * Snapshot benchmark (issues 5 and 14): for a 256 MiB guest, cold create → guest agent ready against snapshot
 * instantiate → the instance's guest agent reporting its new address (target ratio ≤ 0.3 under TCG, goal ≤ 0.05),
 * each with the agent's phases (disk, ram, launch = QEMU start and device-state load, resume, identity push,
 * identity apply, rebridge), `control` (manager and API around the agent) and `report` (agent done → the guest's
 * report), plus the save time and size of a Full snapshot and of a Diff taken over it after the guest ran on for a
 * while. The machine's load average is printed with the figures: under TCG they scale with it.
 *
 *   unshare -n sh -c 'ip link set lo up && npx tsx bench/snapshot.ts'
 */
import { cpus, loadavg } from 'node:os';
import { startStack, until } from '../test/e2e/support/stack.ts';

const stack = await startStack({ cidr: '10.215.0.0/24', bridge: 'nqbr-sbench', agentPort: 19192 });
const api = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
  const r = await stack.api<T>(method, url, body);
  if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};

type Vm = { id: string; guest_ready_at: string | null; nics: { ip: string }[] };
type Snap = { id: string; state_bytes: number; disk_bytes: number };

interface Timed {
  ms: number;
  /** Agent phases (ms), then `control` (manager and API around the agent's work) and `report` (agent done → report). */
  phases: Record<string, number>;
}

/** Splits `ms`, from the API call to the report at `reportAt` (epoch ms), into the agent's phases and the rest. */
function breakdown(vmId: string, reportAt: number, ms: number): Timed {
  const booted = stack.agent.vms.phasesOf(vmId);
  if (!booted) return { ms, phases: {} };
  const { total = 0, ...phases } = booted.phases;
  const report = Math.max(0, reportAt - booted.finishedAt);
  return { ms, phases: { ...phases, control: Math.max(0, ms - total - report), report } };
}

/** Instantiates a snapshot and times it until the instance's guest agent reports from its new address. */
async function instantiate(snapId: string, name: string): Promise<Timed> {
  const t = performance.now();
  const inst = await api<Vm>('POST', `/v1/snapshots/${snapId}/instantiate`, { name });
  const ip = inst.nics[0]?.ip.split('/')[0];
  const seen = await until(
    `${name} reporting`,
    async () => {
      const r = stack.agent.guest.lastReports.get(inst.id);
      return r?.report.ip === ip && r;
    },
    120_000,
  );
  return breakdown(inst.id, Date.parse(seen.at), performance.now() - t);
}

const phaseLine = (t: Timed) =>
  Object.entries(t.phases)
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');

async function snapshot(vmId: string, name: string, type: 'Full' | 'Diff'): Promise<Snap & { ms: number }> {
  const t = performance.now();
  const s = await api<Snap>('POST', `/v1/vms/${vmId}/snapshots`, { name, snapshot_type: type });
  return { ...s, ms: performance.now() - t };
}

try {
  const t0 = performance.now();
  const vm = await api<Vm>('POST', '/v1/vms', {
    name: 'sbench-src',
    vcpu: 1,
    mem_mib: 256,
    kernel_image_id: stack.images.kernel,
    initrd_image_id: stack.images.initrd,
    rootfs_image_id: stack.images.rootfs,
    username: 'demo',
    password: 'demo-password',
  });
  const readyAt = await until(
    'guest ready',
    async () => (await api<Vm>('GET', `/v1/vms/${vm.id}`)).guest_ready_at,
    180_000,
  );
  const cold = performance.now() - t0;
  const coldPhases = breakdown(vm.id, Date.parse(readyAt), cold);

  const full = await snapshot(vm.id, 'full', 'Full');
  // Deliberate run time (not a wait for a condition): the guest and its agent work on, so the Diff has changes.
  await new Promise((r) => setTimeout(r, 15_000));
  const diff = await snapshot(vm.id, 'diff', 'Diff');

  const warmFull = await instantiate(full.id, 'sbench-full');
  const warmDiff = await instantiate(diff.id, 'sbench-diff');

  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  process.stdout.write(
    [
      `cold create → guest agent ready:               ${cold.toFixed(0)} ms`,
      `  phases (ms): ${phaseLine(coldPhases)}`,
      `instantiate Full → guest agent on its new IP:  ${warmFull.ms.toFixed(0)} ms (ratio ${(warmFull.ms / cold).toFixed(2)}, target ≤ 0.3, goal ≤ 0.05)`,
      `  phases (ms): ${phaseLine(warmFull)}`,
      `instantiate Diff → guest agent on its new IP:  ${warmDiff.ms.toFixed(0)} ms (ratio ${(warmDiff.ms / cold).toFixed(2)}, target ≤ 0.3, goal ≤ 0.05)`,
      `  phases (ms): ${phaseLine(warmDiff)}`,
      `load average at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (${cpus().length} CPUs)`,
      `Full snapshot (256 MiB guest), API call:       ${full.ms.toFixed(0)} ms, state+RAM ${mib(full.state_bytes)}, disk ${mib(full.disk_bytes)} allocated`,
      `Diff snapshot 15 s later, API call:            ${diff.ms.toFixed(0)} ms, state+RAM ${mib(diff.state_bytes)}, disk ${mib(diff.disk_bytes)} allocated (full sparse copy)`,
      '',
    ].join('\n'),
  );
} finally {
  for (const v of (await api<{ items: { id: string }[] }>('GET', '/v1/vms')).items)
    await api('DELETE', `/v1/vms/${v.id}`).catch(() => undefined);
  await stack.manager.services.operations.idle();
  await stack.close();
}
