import { stringify } from 'yaml';

export type OutputMode = 'table' | 'json' | 'yaml' | 'quiet';

/** Renders a list of objects as an aligned text table of the chosen columns. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown) =>
    v === null || v === undefined
      ? '-'
      : Array.isArray(v)
        ? v.join(',')
        : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v);
  const data = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...data.map((d) => d[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...data.map(line)].join('\n');
}

/** Columns a person wants first, per collection; others show their first scalar fields. */
const COLUMNS: Record<string, string[]> = {
  vms: ['id', 'name', 'state', 'vcpu', 'mem_mib', 'guest_ip', 'host_id'],
  images: ['id', 'name', 'kind', 'state', 'size_bytes'],
  hosts: ['id', 'name', 'health', 'addr', 'last_seen_at'],
  templates: ['id', 'name', 'description'],
  events: ['id', 'at', 'actor', 'resource_type', 'action', 'result'],
  tokens: ['id', 'name', 'prefix', 'expires_at', 'last_used_at'],
  snapshots: ['id', 'name', 'snapshot_type', 'state', 'vm_id', 'created_at'],
  operations: ['id', 'kind', 'vm_id', 'state', 'step', 'attempts', 'error'],
};

function columnsFor(group: string, rows: Record<string, unknown>[]): string[] {
  const known = COLUMNS[group];
  if (known) return known;
  const first = rows[0] ?? {};
  return Object.keys(first)
    .filter((k) => first[k] === null || typeof first[k] !== 'object')
    .slice(0, 7);
}

/** What a command prints on stdout: a table (or key: value lines), JSON, YAML, or ids alone (`-q`). */
export function render(result: unknown, mode: OutputMode, group: string): string {
  if (result === undefined) return '';
  if (mode === 'json') return JSON.stringify(result, null, 2);
  if (mode === 'yaml') return stringify(result).trimEnd();
  const items = (result as { items?: unknown }).items;
  if (mode === 'quiet') {
    const list = Array.isArray(items) ? items : Array.isArray(result) ? result : [result];
    return list
      .map((r) => (r && typeof r === 'object' && 'id' in r ? String((r as { id: unknown }).id) : ''))
      .filter(Boolean)
      .join('\n');
  }
  if (Array.isArray(items)) {
    const rows = items as Record<string, unknown>[];
    return rows.length ? table(rows, columnsFor(group, rows)) : '(none)';
  }
  if (result !== null && typeof result === 'object') return stringify(result).trimEnd();
  return String(result);
}
