import type { Snapshot } from '@nqvm/api';
import { type ReactNode, useState } from 'react';
import { Card, Field } from '../../components/ui.tsx';
import { formatBytes, formatDate } from '../../lib/format.ts';

/** Every leaf of a spec as `path → JSON text` (`nics[0].mac`), so two specs compare key by key. */
export function flattenSpec(value: unknown, path = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(path, '[]');
    value.forEach((v, i) => {
      flattenSpec(v, `${path}[${i}]`, out);
    });
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) out.set(path, '{}');
    for (const [k, v] of entries) flattenSpec(v, path ? `${path}.${k}` : k, out);
  } else out.set(path, JSON.stringify(value));
  return out;
}

/** The keys whose values differ between two specs, with each side's value (absent: `—`). */
export function specDifferences(a: unknown, b: unknown): { key: string; a: string; b: string }[] {
  const fa = flattenSpec(a);
  const fb = flattenSpec(b);
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort();
  return keys.filter((k) => fa.get(k) !== fb.get(k)).map((k) => ({ key: k, a: fa.get(k) ?? '—', b: fb.get(k) ?? '—' }));
}

/** Two snapshots of a VM side by side: sizes, parent, created, and where their saved configs differ. */
export function SnapshotCompare({ snapshots }: { snapshots: Snapshot[] }) {
  const [aId, setA] = useState(snapshots[1]?.id ?? '');
  const [bId, setB] = useState(snapshots[0]?.id ?? '');
  const a = snapshots.find((s) => s.id === aId);
  const b = snapshots.find((s) => s.id === bId);
  const nameOf = (id: string | null) => (id ? (snapshots.find((s) => s.id === id)?.name ?? id.slice(0, 8)) : 'none');
  const pick = (label: string, value: string, set: (id: string) => void) => (
    <Field label={label}>
      {(p) => (
        <select {...p} value={value} onChange={(e) => set(e.target.value)}>
          {snapshots.map((s) => (
            <option key={s.id} value={s.id}>
              {s.name}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
  const rows: [string, (s: Snapshot) => ReactNode][] = [
    ['Type', (s) => s.snapshot_type],
    ['State', (s) => s.state],
    ['Memory + devices', (s) => formatBytes(s.state_bytes)],
    ['Disk', (s) => formatBytes(s.disk_bytes)],
    ['Total', (s) => formatBytes(s.state_bytes + s.disk_bytes)],
    ['Parent', (s) => nameOf(s.parent_id)],
    ['Created', (s) => formatDate(s.created_at)],
  ];
  const diffs = a && b ? specDifferences(a.source_spec, b.source_spec) : [];
  return (
    <Card title="Compare snapshots">
      <div className="mb-3 grid gap-3 sm:grid-cols-2">
        {pick('First snapshot', aId, setA)}
        {pick('Second snapshot', bId, setB)}
      </div>
      {a && b ? (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm" aria-label="Snapshot comparison">
            <thead className="text-xs text-slate-500 uppercase">
              <tr>
                <th className="py-1 pr-3">
                  <span className="sr-only">Field</span>
                </th>
                <th className="py-1 pr-3">{a.name}</th>
                <th className="py-1">{b.name}</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {rows.map(([label, get]) => (
                <tr key={label}>
                  <th scope="row" className="py-1.5 pr-3 font-medium text-slate-500">
                    {label}
                  </th>
                  <td className="py-1.5 pr-3">{get(a)}</td>
                  <td className="py-1.5">{get(b)}</td>
                </tr>
              ))}
              <tr>
                <th scope="row" colSpan={3} className="pt-3 pb-1 text-xs text-slate-500 uppercase">
                  Config differences
                </th>
              </tr>
              {diffs.length === 0 ? (
                <tr>
                  <td colSpan={3} className="py-1.5 text-slate-500" data-testid="no-config-differences">
                    Same config
                  </td>
                </tr>
              ) : (
                diffs.map((d) => (
                  <tr key={d.key} data-config-key={d.key}>
                    <th scope="row" className="py-1.5 pr-3 font-mono text-xs font-normal">
                      {d.key}
                    </th>
                    <td className="py-1.5 pr-3 font-mono text-xs break-all">{d.a}</td>
                    <td className="py-1.5 font-mono text-xs break-all">{d.b}</td>
                  </tr>
                ))
              )}
            </tbody>
          </table>
        </div>
      ) : null}
    </Card>
  );
}
