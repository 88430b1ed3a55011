import { useId } from 'react';
import { RATE_PRESETS, RATE_UNITS, type RateInput, type RateUnit, rateError, UNLIMITED } from '../lib/rate.ts';
import { inputClass } from './ui.tsx';

/** A bandwidth limit: number + unit, presets, and "unlimited" (empty); the error shows under it. */
export function RateLimitInput({
  label,
  value,
  onChange,
  error,
  disabled,
}: {
  label: string;
  value: RateInput;
  onChange: (v: RateInput) => void;
  error?: string | undefined;
  disabled?: boolean;
}) {
  const id = useId();
  const shown = error ?? rateError(value);
  return (
    <fieldset className="flex flex-col gap-1" disabled={disabled} data-rate-limit={label}>
      <legend className="mb-1 text-sm font-medium text-slate-700">{label}</legend>
      <div className="flex gap-2">
        <input
          id={id}
          className={inputClass}
          aria-label={`${label} value`}
          aria-invalid={Boolean(shown)}
          aria-describedby={shown ? `${id}-err` : undefined}
          inputMode="decimal"
          placeholder="unlimited"
          value={value.value}
          onChange={(e) => onChange({ ...value, value: e.target.value })}
        />
        <select
          className={`${inputClass} w-28`}
          aria-label={`${label} unit`}
          value={value.unit}
          onChange={(e) => onChange({ ...value, unit: e.target.value as RateUnit })}
        >
          {Object.keys(RATE_UNITS).map((u) => (
            <option key={u} value={u}>
              {u}
            </option>
          ))}
        </select>
      </div>
      <div className="flex flex-wrap gap-1 text-xs">
        {RATE_PRESETS.map((p) => (
          <button
            key={p.label}
            type="button"
            aria-label={`${label}: ${p.label}`}
            className="rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100"
            onClick={() => onChange({ value: p.value, unit: p.unit })}
          >
            {p.label}
          </button>
        ))}
        <button
          type="button"
          aria-label={`${label}: unlimited`}
          className="rounded border border-slate-300 px-2 py-0.5 hover:bg-slate-100"
          onClick={() => onChange(UNLIMITED)}
        >
          unlimited
        </button>
      </div>
      {shown ? (
        <p id={`${id}-err`} role="alert" className="text-xs text-red-600" data-field-error>
          {shown}
        </p>
      ) : null}
    </fieldset>
  );
}
