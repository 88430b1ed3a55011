import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ApiError, errorMessage, fieldErrors } from '../../lib/api.ts';

export type Applied = 'live' | 'next_boot';
interface Outcome {
  tone: 'ok' | 'warn' | 'error';
  text: string;
}

const appliedText = (a: Applied | undefined) =>
  a === 'live' ? 'applied to the running VM now' : a === 'next_boot' ? 'takes effect at the next boot' : 'saved';

/** One edit form's save: field errors keyed by top-level API field, a requires_stop answer as a restart warning. */
export function useEdit(vmId: string) {
  const qc = useQueryClient();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async (what: string, fn: () => Promise<{ applied?: Applied } | undefined>): Promise<boolean> => {
    setBusy(true);
    setErrors({});
    setOutcome(null);
    try {
      const res = await fn();
      setOutcome({ tone: 'ok', text: `${what}: ${appliedText(res?.applied)}` });
      await qc.invalidateQueries({ queryKey: ['vm', vmId] });
      return true;
    } catch (err) {
      const fe: Record<string, string> = {};
      for (const [k, v] of Object.entries(fieldErrors(err))) fe[k.split('.')[0] ?? k] ??= v;
      setErrors(fe);
      if (err instanceof ApiError && err.problem.code === 'requires_stop')
        setOutcome({ tone: 'warn', text: `Needs restart: ${errorMessage(err)}` });
      else setOutcome({ tone: 'error', text: `${what}: ${errorMessage(err)}` });
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { errors, outcome, busy, save, reset: () => setOutcome(null) };
}

export function OutcomeNote({ outcome }: { outcome: Outcome | null }) {
  if (!outcome) return null;
  const cls =
    outcome.tone === 'ok'
      ? 'border-green-300 bg-green-50 text-green-800'
      : outcome.tone === 'warn'
        ? 'border-amber-300 bg-amber-50 text-amber-900'
        : 'border-red-300 bg-red-50 text-red-800';
  return (
    <p role={outcome.tone === 'ok' ? 'status' : 'alert'} className={`mt-3 rounded-md border p-2 text-sm ${cls}`}>
      {outcome.text}
    </p>
  );
}

/** The VM states in which the API takes boot-time changes (everything else answers 409 requires_stop). */
export const EDITABLE_STATES = ['stopped', 'error'];

export function RestartWarning({ state }: { state: string }) {
  if (EDITABLE_STATES.includes(state)) return null;
  return (
    <p className="mb-3 rounded-md border border-amber-300 bg-amber-50 p-2 text-sm text-amber-900" data-needs-restart>
      Needs restart: the VM is {state}; these settings change only while it is stopped (stop it, change them, start it).
    </p>
  );
}
