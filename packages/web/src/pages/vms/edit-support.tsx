import type { Vm } from '@nqvm/api';
import { useQueryClient } from '@tanstack/react-query';
import { type ReactNode, useEffect, useId, useState } from 'react';
import { Button, Card } from '../../components/ui.tsx';
import { ApiError, errorMessage, fieldErrors } from '../../lib/api.ts';
import { EDITABLE_STATES, holdForRestart } from './restart-banner.tsx';

export { EDITABLE_STATES };

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
      if (err instanceof ApiError && err.problem.code === 'requires_stop') {
        // One banner at the top of the tab holds it for "Apply and restart"; the form only says where it went.
        holdForRestart(vmId, what, fn);
        setErrors({});
        setOutcome({ tone: 'warn', text: `${what}: held until a restart (see the notice at the top)` });
      } else setOutcome({ tone: 'error', text: `${what}: ${errorMessage(err)}` });
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

/** The states in which live changes (balloon size, rate limits) reach the running VMM. */
export const LIVE_STATES = ['running', 'paused'];

/** A labelled checkbox with the API's error for it right under it. */
export function CheckboxField(props: {
  label: string;
  checked: boolean;
  onChange: (v: boolean) => void;
  error?: string | undefined;
  disabled?: boolean;
}) {
  const id = useId();
  return (
    <div className="flex flex-col gap-1 pt-6 text-sm">
      <label className="flex items-center gap-2">
        <input
          type="checkbox"
          checked={props.checked}
          disabled={props.disabled}
          onChange={(e) => props.onChange(e.target.checked)}
          aria-invalid={Boolean(props.error)}
          aria-describedby={props.error ? `${id}-err` : undefined}
        />{' '}
        {props.label}
      </label>
      {props.error ? (
        <p id={`${id}-err`} role="alert" className="text-xs text-red-600" data-field-error>
          {props.error}
        </p>
      ) : null}
    </div>
  );
}

/** Form state that follows the stored value whenever a refetch changes it (compared by content). */
export function useSynced<T>(stored: T): [T, (v: T) => void] {
  const [v, setV] = useState<T>(stored);
  const key = JSON.stringify(stored);
  // biome-ignore lint/correctness/useExhaustiveDependencies: reset when the stored value changes, by content
  useEffect(() => setV(stored), [key]);
  return [v, setV];
}

/** One single-field device form: the stored value, the restart warning, the control and its save button. */
export function DeviceForm(props: {
  vm: Vm;
  title: string;
  current: string;
  edit: ReturnType<typeof useEdit>;
  canSave: boolean;
  onSave: () => void;
  children: ReactNode;
}) {
  return (
    <Card title={props.title}>
      <p className="mb-2 text-sm text-slate-600" data-current={props.title}>
        Stored: {props.current}
      </p>
      <form
        aria-label={props.title}
        noValidate
        className="flex flex-wrap items-end gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          if (props.canSave) props.onSave();
        }}
      >
        {props.children}
        <Button type="submit" variant="primary" disabled={props.edit.busy || !props.canSave}>
          Save {props.title.toLowerCase()}
        </Button>
      </form>
      <OutcomeNote outcome={props.edit.outcome} />
    </Card>
  );
}
