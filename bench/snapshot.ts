/**
 * Snapshot benchmark (issue 5): for a 256 MiB guest, cold create → guest agent ready against snapshot
 * instantiate → the instance's guest agent reporting its new address (target ratio ≤ 0.3 under TCG), plus the
 * save time and size of a Full snapshot and of a Diff taken over it after the guest ran on for a while.
 *
 *   unshare -n sh -c 'ip link set lo up && npx tsx bench/snapshot.ts'
 */
import { startStack, until } from '../test/e2e/support/stack.ts';

const stack = await startStack({ cidr: '10.215.0.0/24', bridge: 'nqbr-sbench', agentPort: 19192 });
const api = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
  const r = await stack.api<T>(method, url, body);
  if (r.status >= 300) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
};

type Vm = { id: string; guest_ready_at: string | null; nics: { ip: string }[] };
type Snap = { id: string; state_bytes: number; disk_bytes: number };

/** Instantiates a snapshot and times it until the instance's guest agent reports from its new address. */
async function instantiate(snapId: string, name: string): Promise<number> {
  const t = performance.now();
  const inst = await api<Vm>('POST', `/v1/snapshots/${snapId}/instantiate`, { name });
  const ip = inst.nics[0]?.ip.split('/')[0];
  await until(`${name} reporting`, async () => stack.agent.guest.lastReports.get(inst.id)?.report.ip === ip, 120_000);
  return performance.now() - t;
}

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
  await until('guest ready', async () => (await api<Vm>('GET', `/v1/vms/${vm.id}`)).guest_ready_at, 180_000);
  const cold = performance.now() - t0;

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
      `instantiate Full → guest agent on its new IP:  ${warmFull.toFixed(0)} ms (ratio ${(warmFull / cold).toFixed(2)}, target ≤ 0.3)`,
      `instantiate Diff → guest agent on its new IP:  ${warmDiff.toFixed(0)} ms (ratio ${(warmDiff / cold).toFixed(2)})`,
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
