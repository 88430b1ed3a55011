import type { AgentVmStatus, VmState } from '@nqvm/api';
import type { FastifyBaseLogger } from 'fastify';
import type { Database } from '../../db/client.ts';
import type { EventsService } from '../events/events.service.ts';
import type { HostRow } from '../hosts/hosts.repository.ts';
import type { AgentApi, AgentTarget } from './agent-client.ts';
import type { Changed, StateChange } from './vm-state-machine.ts';
import type { VmRow } from './vms.repository.ts';

// Only one manager reconciles at a time: each tick runs under this advisory lock or is skipped.
const RECONCILE_LOCK = 7_346_002;
// Only settled states go unknown when a host misses heartbeats: a VM in a transitional state has an operation that
// settles it (running, stopped or error) — marking it unknown would lose it.
const SETTLED: VmState[] = ['running', 'paused'];
// A heartbeat must postdate the VM's last change by this much to say anything about it.
const HEARTBEAT_SLACK_MS = 1000;

/** What one tick needs, narrow so the unit tests can pass small fakes. */
export interface ReconcilerDeps {
  database: Pick<Database, 'withSession'>;
  repo: { byHost(hostId: string): Promise<VmRow[]> };
  hosts: { rows(): Promise<HostRow[]>; isHealthy(h: HostRow): boolean };
  machine: { change(c: StateChange): Promise<Changed | undefined> };
  operations: { busyVms(vmIds: string[]): Promise<Set<string>> };
  vms: {
    handleExit(hostId: string, report: { vm_id: string; exit_code: null; signal: string; at: string }): Promise<void>;
    agentTarget(hostId: string): Promise<AgentTarget>;
  };
  agent: Pick<AgentApi, 'remove'>;
  events: Pick<EventsService, 'record'>;
  log: Pick<FastifyBaseLogger, 'warn' | 'error'>;
  now?: () => Date;
}

/**
 * One pass: desired state (database) against observed state (agents), for every VM state. A transitional state with
 * no live operation (its operation was lost) gets a new one; a VM believed running whose VMM the agent lacks exited
 * (its restart policy applies); a VMM running for a VM believed down is stopped.
 */
export async function reconcileTick(d: ReconcilerDeps): Promise<boolean> {
  return d.database.withSession(async (s) => {
    const [lock] = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RECONCILE_LOCK]);
    if (!lock?.ok) return false;
    try {
      for (const host of await d.hosts.rows()) await reconcileHost(d, host);
      return true;
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [RECONCILE_LOCK]);
    }
  });
}

async function reconcileHost(d: ReconcilerDeps, host: HostRow): Promise<void> {
  const now = (d.now ?? (() => new Date()))();
  const vms = await d.repo.byHost(host.id);
  if (!d.hosts.isHealthy(host)) {
    for (const vm of vms.filter((v) => SETTLED.includes(v.state)))
      await d.machine.change({
        vmId: vm.id,
        from: [vm.state],
        to: 'unknown',
        event: {
          actor: 'system',
          action: 'host_unreachable',
          result: 'error',
          detail: { host_id: host.id, previous_state: vm.state },
        },
      });
    return;
  }
  const reported = new Map((host.reportedVms as AgentVmStatus[]).map((r) => [r.id, r]));
  const seenAt = host.lastSeenAt?.getTime() ?? 0;
  const busy = await d.operations.busyVms(vms.map((v) => v.id));
  for (const vm of vms) {
    const r = reported.get(vm.id);
    const up = r?.state === 'running' || r?.state === 'paused';
    const observed = seenAt > vm.updatedAt.getTime() + HEARTBEAT_SLACK_MS;
    const system = (action: string, detail: Record<string, unknown>, result: 'ok' | 'error' | 'info' = 'info') => ({
      actor: 'system',
      action,
      result,
      detail,
    });
    switch (vm.state) {
      case 'unknown':
        if (up && r)
          await d.machine.change({
            vmId: vm.id,
            from: ['unknown'],
            to: r.state as VmState,
            event: system('host_back', { state: r.state }),
          });
        else await exited(d, host.id, vm, now);
        break;
      case 'running':
      case 'paused':
        if (!up && observed) await exited(d, host.id, vm, now);
        break;
      case 'creating':
      case 'starting':
        if (!busy.has(vm.id))
          await d.machine.change({
            vmId: vm.id,
            from: [vm.state],
            to: 'starting',
            event: system('boot_resumed', { reason: 'no operation was booting it' }),
            operation: { kind: 'start', actor: 'system' },
          });
        break;
      case 'stopping':
        if (!busy.has(vm.id))
          await d.machine.change({
            vmId: vm.id,
            from: ['stopping'],
            to: 'stopping',
            event: system('stop_resumed', { reason: 'no operation was stopping it' }),
            operation: { kind: 'stop', actor: 'system', input: { timeout_s: 20 } },
          });
        break;
      case 'deleting':
        if (!busy.has(vm.id))
          await d.machine.change({
            vmId: vm.id,
            from: ['deleting'],
            to: 'deleting',
            event: system('delete_resumed', { reason: 'no operation was deleting it' }),
            operation: { kind: 'delete', actor: 'system' },
          });
        break;
      case 'stopped':
      case 'error':
        if (up && observed && !busy.has(vm.id))
          await d.machine.change({
            vmId: vm.id,
            from: [vm.state],
            to: 'stopping',
            patch: { desiredRunning: false },
            event: system(
              'vmm_unexpected',
              { pid: r?.pid ?? null, reason: `a VMM runs for a VM that is ${vm.state}` },
              'error',
            ),
            operation: { kind: 'stop', actor: 'system', input: { timeout_s: 5 } },
          });
        break;
    }
  }
  for (const r of reported.values()) {
    if (vms.some((v) => v.id === r.id)) continue;
    // Reported by the agent (so nqvm made it) but no longer in the database: a leftover.
    try {
      await d.agent.remove(await d.vms.agentTarget(host.id), r.id);
      await d.events.record({
        actor: 'system',
        resourceType: 'vm',
        resourceId: r.id,
        action: 'orphan_removed',
        detail: { host_id: host.id },
      });
    } catch (err) {
      d.log.warn({ err, vm_id: r.id }, 'could not remove orphan VM');
    }
  }
}

function exited(d: ReconcilerDeps, hostId: string, vm: VmRow, now: Date): Promise<void> {
  return d.vms.handleExit(hostId, { vm_id: vm.id, exit_code: null, signal: 'unknown', at: now.toISOString() });
}

export function startReconciler(d: ReconcilerDeps, intervalMs: number): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = reconcileTick(d).catch((err) => d.log.error({ err }, 'reconcile tick failed'));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
