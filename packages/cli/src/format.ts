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

export const COLUMNS: Record<string, string[]> = {
  vms: ['id', 'name', 'state', 'vcpu', 'mem_mib', 'guest_ip', 'host_id'],
  images: ['id', 'name', 'kind', 'state', 'size_bytes'],
  hosts: ['id', 'name', 'health', 'addr', 'last_seen_at'],
  templates: ['id', 'name', 'description'],
  events: ['id', 'at', 'actor', 'resource_type', 'action', 'result'],
  tokens: ['id', 'name', 'prefix', 'expires_at', 'last_used_at'],
};
