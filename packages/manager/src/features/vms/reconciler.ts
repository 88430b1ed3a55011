import type { AgentVmStatus, VmState } from '@nqvm/api';
import type { FastifyBaseLogger } from 'fastify';
import type { Database } from '../../db/client.ts';
import type { EventsService } from '../events/events.service.ts';
import type { HostsService } from '../hosts/hosts.service.ts';
import type { AgentApi } from './agent-client.ts';
import type { VmsRepository } from './vms.repository.ts';
import type { VmsService } from './vms.service.ts';

// Only one manager reconciles at a time: each tick runs under this advisory lock or is skipped.
const RECONCILE_LOCK = 7_346_002;
// Only settled states go unknown when a host misses heartbeats: a starting or stopping VM has a manager call to
// its agent in flight, and that call settles it (running, stopped or error) — marking it unknown would lose it.
const SETTLED: VmState[] = ['running', 'paused'];

export interface ReconcilerDeps {
  database: Database;
  repo: VmsRepository;
  vms: VmsService;
  hosts: HostsService;
  agent: AgentApi;
  events: EventsService;
  log: FastifyBaseLogger;
  now?: () => Date;
}

/** One pass: desired state (database) against observed state (agents); converges and records drift. */
export async function reconcileTick(d: ReconcilerDeps): Promise<boolean> {
  return d.database.withSession(async (s) => {
    const [lock] = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [RECONCILE_LOCK]);
    if (!lock?.ok) return false;
    try {
      for (const host of await d.hosts.rows()) {
        const vms = await d.repo.byHost(host.id);
        if (!d.hosts.isHealthy(host)) {
          for (const vm of vms.filter((v) => SETTLED.includes(v.state))) {
            if (!(await d.repo.transition(vm.id, [vm.state], 'unknown'))) continue;
            await d.events.record({
              actor: 'system',
              resourceType: 'vm',
              resourceId: vm.id,
              action: 'host_unreachable',
              result: 'error',
              detail: { host_id: host.id, previous_state: vm.state },
            });
          }
          continue;
        }
        const reported = new Map((host.reportedVms as AgentVmStatus[]).map((r) => [r.id, r]));
        const seenAt = host.lastSeenAt?.getTime() ?? 0;
        for (const vm of vms) {
          const r = reported.get(vm.id);
          if (vm.state === 'unknown') {
            const next: VmState = r?.state === 'running' || r?.state === 'paused' ? r.state : 'stopped';
            if (await d.repo.transition(vm.id, ['unknown'], next, next === 'stopped' ? { pid: null } : {}))
              await d.events.record({
                actor: 'system',
                resourceType: 'vm',
                resourceId: vm.id,
                action: 'host_back',
                result: next === 'stopped' ? 'error' : 'info',
                detail: { state: next },
              });
          } else if ((vm.state === 'running' || vm.state === 'paused') && (!r || r.state === 'stopped')) {
            // The heartbeat must postdate the VM's last change, or a VM booted a moment ago looks missing.
            if (seenAt > vm.updatedAt.getTime() + 1000)
              await d.vms.handleExit(host.id, {
                vm_id: vm.id,
                exit_code: null,
                signal: 'unknown',
                at: new Date().toISOString(),
              });
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
      return true;
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [RECONCILE_LOCK]);
    }
  });
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
