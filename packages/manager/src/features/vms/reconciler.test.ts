import type { VmState } from '@nqvm/api';
import { describe, expect, it } from 'vitest';
import type { HostRow } from '../hosts/hosts.repository.ts';
import { type ReconcilerDeps, reconcileTick } from './reconciler.ts';
import type { StateChange } from './vm-state-machine.ts';
import type { VmRow } from './vms.repository.ts';

const T0 = new Date('2026-12-03T08:00:00Z');

function vm(id: string, state: VmState): VmRow {
  return { id, state, hostId: 'h1', updatedAt: T0, restartPolicy: 'never' } as VmRow;
}

function host(reported: { id: string; state: string }[], seenAt = new Date(T0.getTime() + 5000)): HostRow {
  return {
    id: 'h1',
    reportedVms: reported.map((r) => ({ ...r, pid: 1, booted_at: null })),
    lastSeenAt: seenAt,
  } as HostRow;
}

/** Fakes that record what the tick asked for, in order. */
function fakes(vms: VmRow[], h: HostRow, opts: { healthy?: boolean; busy?: string[] } = {}) {
  const calls: string[] = [];
  const deps: ReconcilerDeps = {
    database: { withSession: (fn) => fn({ exec: async () => {}, query: async () => [{ ok: true }] as never[] }) },
    repo: { byHost: async () => vms },
    hosts: { rows: async () => [h], isHealthy: () => opts.healthy ?? true },
    machine: {
      change: async (c: StateChange) => {
        calls.push(
          `change ${c.vmId} ${c.from.join('|')}->${c.to}${c.operation ? ` +${c.operation.kind}` : ''}${c.event ? ` (${c.event.action})` : ''}`,
        );
        return undefined;
      },
    },
    operations: { busyVms: async () => new Set(opts.busy ?? []) },
    vms: {
      handleExit: async (_h, r) => {
        calls.push(`exited ${r.vm_id}`);
      },
      agentTarget: async () => ({ hostId: 'h1', addr: 'http://agent', secret: 's' }),
    },
    agent: {
      remove: async (_t, id) => {
        calls.push(`remove ${id}`);
      },
    },
    events: { record: async (e) => ({ ...e, id: '1' }) as never },
    log: { warn: () => {}, error: () => {} },
    now: () => T0,
  };
  return { deps, calls };
}

describe('reconcile tick', () => {
  it('gives a transitional VM whose operation was lost a new one, and leaves one with a live operation alone', async () => {
    const { deps, calls } = fakes(
      [vm('a', 'creating'), vm('b', 'starting'), vm('c', 'stopping'), vm('d', 'deleting'), vm('e', 'starting')],
      host([]),
      { busy: ['e'] },
    );
    await reconcileTick(deps);
    expect(calls).toEqual([
      'change a creating->starting +start (boot_resumed)',
      'change b starting->starting +start (boot_resumed)',
      'change c stopping->stopping +stop (stop_resumed)',
      'change d deleting->deleting +delete (delete_resumed)',
    ]);
  });

  it('records a VM believed running whose VMM the agent lacks as exited (restart policy applies there)', async () => {
    const { deps, calls } = fakes(
      [vm('a', 'running'), vm('b', 'paused'), vm('c', 'running')],
      host([{ id: 'c', state: 'running' }]),
    );
    await reconcileTick(deps);
    expect(calls).toEqual(['exited a', 'exited b']);
  });

  it('says nothing about a running VM from a heartbeat older than its last change', async () => {
    const { deps, calls } = fakes([vm('a', 'running')], host([], new Date(T0.getTime() + 500)));
    await reconcileTick(deps);
    expect(calls).toEqual([]);
  });

  it('stops a VMM the agent runs for a VM believed stopped or in error', async () => {
    const { deps, calls } = fakes(
      [vm('a', 'stopped'), vm('b', 'error'), vm('c', 'stopped')],
      host([
        { id: 'a', state: 'running' },
        { id: 'b', state: 'paused' },
      ]),
    );
    await reconcileTick(deps);
    expect(calls).toEqual([
      'change a stopped->stopping +stop (vmm_unexpected)',
      'change b error->stopping +stop (vmm_unexpected)',
    ]);
  });

  it('brings unknown VMs back as the agent reports them, or as exited', async () => {
    const { deps, calls } = fakes([vm('a', 'unknown'), vm('b', 'unknown')], host([{ id: 'a', state: 'paused' }]));
    await reconcileTick(deps);
    expect(calls).toEqual(['change a unknown->paused (host_back)', 'exited b']);
  });

  it('marks settled VMs of an unhealthy host unknown and nothing else', async () => {
    const { deps, calls } = fakes([vm('a', 'running'), vm('b', 'starting'), vm('c', 'stopped')], host([]), {
      healthy: false,
    });
    await reconcileTick(deps);
    expect(calls).toEqual(['change a running->unknown (host_unreachable)']);
  });

  it('removes a VM the agent runs that the database no longer has', async () => {
    const { deps, calls } = fakes([], host([{ id: 'gone', state: 'running' }]));
    await reconcileTick(deps);
    expect(calls).toEqual(['remove gone']);
  });
});
