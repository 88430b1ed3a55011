import { type ButtonHTMLAttributes, type ReactNode, useId } from 'react';
import { errorMessage, isMissingRoute } from '../lib/api.ts';

type Variant = 'primary' | 'secondary' | 'danger' | 'ghost';
const VARIANTS: Record<Variant, string> = {
  primary: 'bg-blue-600 text-white hover:bg-blue-700 disabled:bg-blue-300',
  secondary: 'bg-white text-slate-800 border border-slate-300 hover:bg-slate-100 disabled:text-slate-400',
  danger: 'bg-red-600 text-white hover:bg-red-700 disabled:bg-red-300',
  ghost: 'text-slate-700 hover:bg-slate-200 disabled:text-slate-400',
};

export function Button({
  variant = 'secondary',
  className = '',
  type = 'button',
  ...rest
}: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant }) {
  return (
    <button
      type={type}
      className={`inline-flex items-center justify-center gap-1 rounded-md px-3 py-1.5 text-sm font-medium transition-colors disabled:cursor-not-allowed ${VARIANTS[variant]} ${className}`}
      {...rest}
    />
  );
}

const inputClass =
  'w-full rounded-md border border-slate-300 bg-white px-2.5 py-1.5 text-sm shadow-sm focus:border-blue-500 aria-[invalid=true]:border-red-500';

interface FieldProps {
  label: string;
  error?: string | undefined;
  hint?: string;
  children: (props: {
    id: string;
    'aria-invalid': boolean;
    'aria-describedby'?: string;
    className: string;
  }) => ReactNode;
}

/** A labelled control with its hint and the API's error for that field shown right under it. */
export function Field({ label, error, hint, children }: FieldProps) {
  const id = useId();
  const describedBy = error ? `${id}-err` : hint ? `${id}-hint` : undefined;
  return (
    <div className="flex flex-col gap-1">
      <label htmlFor={id} className="text-sm font-medium text-slate-700">
        {label}
      </label>
      {children({
        id,
        'aria-invalid': Boolean(error),
        ...(describedBy ? { 'aria-describedby': describedBy } : {}),
        className: inputClass,
      })}
      {error ? (
        <p id={`${id}-err`} role="alert" className="text-xs text-red-600" data-field-error>
          {error}
        </p>
      ) : hint ? (
        <p id={`${id}-hint`} className="text-xs text-slate-500">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export { inputClass };

export function Card({
  title,
  actions,
  children,
  className = '',
}: {
  title?: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
}) {
  return (
    <section className={`rounded-lg border border-slate-200 bg-white shadow-sm ${className}`}>
      {title || actions ? (
        <header className="flex flex-wrap items-center justify-between gap-2 border-b border-slate-200 px-4 py-2.5">
          <h2 className="text-sm font-semibold text-slate-800">{title}</h2>
          <div className="flex flex-wrap gap-2">{actions}</div>
        </header>
      ) : null}
      <div className="p-4">{children}</div>
    </section>
  );
}

export function PageHeader({ title, actions }: { title: string; actions?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-center justify-between gap-2">
      <h1 className="text-xl font-semibold">{title}</h1>
      <div className="flex flex-wrap gap-2">{actions}</div>
    </div>
  );
}

const STATE_COLORS: Record<string, string> = {
  running: 'bg-green-100 text-green-800',
  healthy: 'bg-green-100 text-green-800',
  ready: 'bg-green-100 text-green-800',
  ok: 'bg-green-100 text-green-800',
  paused: 'bg-amber-100 text-amber-800',
  stopped: 'bg-slate-200 text-slate-700',
  error: 'bg-red-100 text-red-800',
  unreachable: 'bg-red-100 text-red-800',
  unknown: 'bg-slate-200 text-slate-700',
  firing: 'bg-red-100 text-red-800',
  failed: 'bg-red-100 text-red-800',
  succeeded: 'bg-green-100 text-green-800',
  valid: 'bg-green-100 text-green-800',
  pending: 'bg-amber-100 text-amber-800',
  delivering: 'bg-amber-100 text-amber-800',
  disabled: 'bg-slate-200 text-slate-700',
  used: 'bg-slate-200 text-slate-700',
  expired: 'bg-slate-200 text-slate-700',
};

export function Badge({ value }: { value: string }) {
  return (
    <span
      className={`inline-block rounded-full px-2 py-0.5 text-xs font-medium ${STATE_COLORS[value] ?? 'bg-blue-100 text-blue-800'}`}
    >
      {value}
    </span>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div role="status" className="flex items-center gap-2 py-8 text-sm text-slate-500">
      <span className="h-4 w-4 animate-spin rounded-full border-2 border-slate-300 border-t-blue-600" aria-hidden />
      {label}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <div className="rounded-md border border-dashed border-slate-300 p-8 text-center text-sm text-slate-500">
      {children}
    </div>
  );
}

/** Error state; a 404 `route_not_found` means this manager does not offer the feature yet. */
export function ErrorState({ error, what, retry }: { error: unknown; what?: string; retry?: () => void }) {
  if (isMissingRoute(error))
    return (
      <div
        role="status"
        className="rounded-md border border-amber-300 bg-amber-50 p-4 text-sm text-amber-900"
        data-state="not-available"
      >
        {what ?? 'This feature'} is not available yet on this manager (the API answered 404 for its endpoint).
      </div>
    );
  return (
    <div
      role="alert"
      className="flex flex-wrap items-center gap-3 rounded-md border border-red-300 bg-red-50 p-4 text-sm text-red-800"
    >
      <span>{errorMessage(error)}</span>
      {retry ? (
        <Button variant="secondary" onClick={retry}>
          Retry
        </Button>
      ) : null}
    </div>
  );
}

export function ProgressBar({ value, max, label }: { value: number; max: number | null; label: string }) {
  const pct = max ? Math.min(100, Math.round((value / max) * 100)) : undefined;
  return (
    <div
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      {...(pct !== undefined ? { 'aria-valuenow': pct } : {})}
      className="h-2 w-full overflow-hidden rounded-full bg-slate-200"
    >
      <div
        className={`h-full bg-blue-600 transition-all ${pct === undefined ? 'w-1/3 animate-pulse' : ''}`}
        style={pct !== undefined ? { width: `${pct}%` } : undefined}
      />
    </div>
  );
}

/**
 * Allocation against what the scheduler may place: physical capacity × the overcommit ratio. The colour is the
 * pressure on that schedulable amount (amber from 70 %, red from 90 %), not the raw ratio to the hardware.
 */
export function Meter({
  label,
  used,
  total,
  overcommit = 1,
  format,
}: {
  label: string;
  used: number;
  total: number;
  overcommit?: number;
  format: (n: number) => string;
}) {
  const schedulable = Math.floor(total * overcommit);
  const pct = schedulable ? Math.round((used / schedulable) * 100) : 0;
  const color = pct >= 90 ? 'bg-red-500' : pct >= 70 ? 'bg-amber-500' : 'bg-blue-600';
  const pressure = pct >= 90 ? 'high' : pct >= 70 ? 'rising' : 'low';
  return (
    <div className="flex flex-col gap-1">
      <div className="flex flex-wrap justify-between gap-x-2 text-xs text-slate-600">
        <span>{label}</span>
        <span>
          {format(used)} of {format(schedulable)} ({pct}%)
        </span>
      </div>
      {/* biome-ignore lint/a11y/useSemanticElements: a styled bar; the native <meter> renders differently per browser */}
      <div
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.min(100, pct)}
        aria-valuetext={`${pct}% of schedulable, pressure ${pressure}`}
        data-pressure={pressure}
        className="h-2 overflow-hidden rounded-full bg-slate-200"
      >
        <div className={`h-full ${color}`} style={{ width: `${Math.min(100, pct)}%` }} />
      </div>
      {overcommit !== 1 ? (
        <p className="text-xs text-slate-500">
          {format(total)} physical × {overcommit} overcommit
        </p>
      ) : null}
    </div>
  );
}

/** A table's header row: small uppercase column names, and a last column for row actions named for screen readers. */
export function TableHead({ columns, actions = false }: { columns: readonly string[]; actions?: boolean }) {
  return (
    <thead className="text-xs text-slate-500 uppercase">
      <tr>
        {columns.map((c) => (
          <th key={c} className="py-1 pr-3">
            {c}
          </th>
        ))}
        {actions ? (
          <th className="py-1">
            <span className="sr-only">Actions</span>
          </th>
        ) : null}
      </tr>
    </thead>
  );
}

export function DefinitionList({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="grid grid-cols-1 gap-x-6 gap-y-2 text-sm sm:grid-cols-[max-content_1fr]">
      {items.map(([k, v]) => (
        <div key={k} className="contents">
          <dt className="font-medium text-slate-500">{k}</dt>
          <dd className="break-all text-slate-900">{v}</dd>
        </div>
      ))}
    </dl>
  );
}
