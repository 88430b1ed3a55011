import { api, type Vm } from '@nqvm/api';
import { useQueryClient } from '@tanstack/react-query';
import { useState, useSyncExternalStore } from 'react';
import { useToast } from '../../components/toast.tsx';
import { Button } from '../../components/ui.tsx';
import { call, errorMessage } from '../../lib/api.ts';
import { trackTask } from '../../lib/tasks.ts';

/** A change the API refused with requires_stop, kept to be applied while the VM is stopped. */
interface Held {
  what: string;
  apply: () => Promise<unknown>;
}

const held = new Map<string, Held[]>();
const listeners = new Set<() => void>();
const NONE: Held[] = [];

function publish(): void {
  for (const fn of listeners) fn();
}

/** Keeps a refused change (the latest one per form replaces the earlier) until "Apply and restart" or discard. */
export function holdForRestart(vmId: string, what: string, apply: () => Promise<unknown>): void {
  const list = (held.get(vmId) ?? []).filter((h) => h.what !== what);
  held.set(vmId, [...list, { what, apply }]);
  publish();
}

function clear(vmId: string): void {
  held.delete(vmId);
  publish();
}

function useHeld(vmId: string): Held[] {
  return useSyncExternalStore(
    (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    () => held.get(vmId) ?? NONE,
  );
}

/** The VM states in which the API takes boot-time changes (everything else answers 409 requires_stop). */
export const EDITABLE_STATES = ['stopped', 'error'];

/**
 * The one restart notice of a tab: while the VM runs, boot-time settings cannot change; a change refused for that
 * reason is held here and "Apply and restart" stops the VM, applies every held change and starts it again.
 */
export function RestartBanner({ vm }: { vm: Vm }) {
  const pending = useHeld(vm.id);
  const qc = useQueryClient();
  const toast = useToast();
  const [phase, setPhase] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  if (EDITABLE_STATES.includes(vm.state) && pending.length === 0) return null;
  const params = { params: { id: vm.id } };
  const applyAndRestart = async () => {
    setFailure(null);
    try {
      if (!EDITABLE_STATES.includes(vm.state)) {
        setPhase('stopping the VM');
        await call(api.vms.stop, params);
        await call(api.vms.wait, { ...params, query: { state: 'stopped', timeout: 600 }, timeoutMs: null });
      }
      for (const h of pending) {
        setPhase(`applying ${h.what.toLowerCase()}`);
        try {
          await h.apply();
        } catch (err) {
          throw new Error(`${h.what}: ${errorMessage(err)} (the VM is left stopped)`);
        }
      }
      clear(vm.id);
      setPhase('starting the VM');
      const started = await call(api.vms.start, params);
      trackTask(`Start ${vm.name}`, vm.id, { states: ['running'] }, started.operation_id);
      toast(`${vm.name}: changes applied, starting again`);
    } catch (err) {
      setFailure(errorMessage(err));
    } finally {
      setPhase(null);
      await qc.invalidateQueries({ queryKey: ['vm', vm.id] });
    }
  };
  return (
    <div
      role={pending.length ? 'alert' : 'note'}
      data-needs-restart
      className="flex flex-col gap-2 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900"
    >
      <p>
        {pending.length ? 'Needs restart: ' : ''}the VM is {vm.state}; machine, CPU, boot-time device, drive and NIC
        settings change only while it is stopped. Live settings (balloon size, rate limits, logger) apply at once.
      </p>
      {pending.length ? (
        <>
          <p>
            Held until a restart: <strong>{pending.map((h) => h.what).join(', ')}</strong>.
          </p>
          <div className="flex flex-wrap gap-2">
            <Button variant="primary" disabled={phase !== null} onClick={applyAndRestart}>
              {phase
                ? `Working: ${phase}…`
                : EDITABLE_STATES.includes(vm.state)
                  ? 'Apply and start'
                  : 'Apply and restart'}
            </Button>
            <Button disabled={phase !== null} onClick={() => clear(vm.id)}>
              Discard held changes
            </Button>
          </div>
        </>
      ) : null}
      {failure ? <p className="text-red-800">{failure}</p> : null}
    </div>
  );
}
