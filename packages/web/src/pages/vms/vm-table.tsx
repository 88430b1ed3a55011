import type { Vm } from '@nqvm/api';
import { type KeyboardEvent, memo, type ReactNode, useLayoutEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import { Badge } from '../../components/ui.tsx';
import { formatMib } from '../../lib/format.ts';
import { rowWindow, scrollToRow } from '../../lib/windowing.ts';
import { VmActionMenu } from './vm-menu.tsx';

const ROW_HEIGHT = 37;
const HEADER_HEIGHT = 30;
const NAV_KEYS = ['ArrowDown', 'ArrowUp', 'PageDown', 'PageUp', 'Home', 'End'];

/**
 * The VM table, windowed: only the rows in view (plus a margin) are in the DOM, so 1,000+ VMs scroll smoothly.
 * Arrow keys, Page Up/Down, Home and End move focus between rows (scrolling rows into the DOM as needed);
 * aria-rowcount/aria-rowindex tell assistive technology the full size.
 */
export function VmTable({
  rows,
  header,
  hostName,
  selected,
  onToggle,
}: {
  rows: Vm[];
  header: ReactNode;
  hostName: Map<string, string>;
  selected: Set<string>;
  onToggle: (id: string) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  const pendingFocus = useRef<{ index: number; col: string } | null>(null);
  const win = rowWindow(view.top, view.height, ROW_HEIGHT, rows.length);

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setView({ top: el.scrollTop, height: el.clientHeight });
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Focus the row a key asked for once it is rendered.
  useLayoutEffect(() => {
    const want = pendingFocus.current;
    if (!want || want.index < win.start || want.index >= win.end) return;
    pendingFocus.current = null;
    box.current
      ?.querySelector<HTMLElement>(`tr[aria-rowindex="${want.index + 2}"] [data-col="${want.col}"]`)
      ?.focus({ preventScroll: true });
  });

  const onKeyDown = (e: KeyboardEvent<HTMLTableSectionElement>) => {
    const el = box.current;
    if (!el || !NAV_KEYS.includes(e.key)) return;
    const target = e.target as HTMLElement;
    const row = target.closest('tr');
    const col = target.dataset.col;
    if (!row || !col) return;
    const at = Number(row.getAttribute('aria-rowindex')) - 2;
    const page = Math.max(1, Math.floor((el.clientHeight - HEADER_HEIGHT) / ROW_HEIGHT) - 1);
    const last = rows.length - 1;
    const next =
      e.key === 'ArrowDown'
        ? at + 1
        : e.key === 'ArrowUp'
          ? at - 1
          : e.key === 'PageDown'
            ? at + page
            : e.key === 'PageUp'
              ? at - page
              : e.key === 'Home'
                ? 0
                : last;
    const index = Math.max(0, Math.min(last, next));
    e.preventDefault();
    pendingFocus.current = { index, col };
    const top = scrollToRow(index, el.scrollTop, el.clientHeight, ROW_HEIGHT, HEADER_HEIGHT);
    el.scrollTop = top;
    setView({ top, height: el.clientHeight });
  };

  return (
    <div
      ref={box}
      className="max-h-[70vh] overflow-auto"
      data-testid="vm-scroll"
      onScroll={(e) => setView({ top: e.currentTarget.scrollTop, height: e.currentTarget.clientHeight })}
    >
      <table
        className="w-full min-w-[60rem] table-fixed text-left text-sm"
        data-testid="vm-table"
        aria-rowcount={rows.length + 1}
      >
        <colgroup>
          <col className="w-8" />
          <col className="w-40" />
          <col className="w-24" />
          <col className="w-28" />
          <col className="w-32" />
          <col className="w-28" />
          <col className="w-36" />
          <col />
          <col className="w-28" />
          <col className="w-16" />
        </colgroup>
        <thead className="sticky top-0 z-10 bg-white text-xs text-slate-500 uppercase">{header}</thead>
        <tbody className="divide-y divide-slate-100" onKeyDown={onKeyDown}>
          {win.padTop > 0 ? <tr aria-hidden style={{ height: win.padTop }} /> : null}
          {rows.slice(win.start, win.end).map((v, i) => (
            <VmRow
              key={v.id}
              index={win.start + i}
              vm={v}
              host={v.host_id ? hostName.get(v.host_id) : undefined}
              checked={selected.has(v.id)}
              onToggle={onToggle}
            />
          ))}
          {win.padBottom > 0 ? <tr aria-hidden style={{ height: win.padBottom }} /> : null}
        </tbody>
      </table>
    </div>
  );
}

const DAY = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const cell = 'truncate py-0 pr-3';

const VmRow = memo(function VmRow({
  index,
  vm,
  host,
  checked,
  onToggle,
}: {
  index: number;
  vm: Vm;
  host: string | undefined;
  checked: boolean;
  onToggle: (id: string) => void;
}) {
  return (
    <tr data-vm-name={vm.name} aria-rowindex={index + 2} style={{ height: ROW_HEIGHT }}>
      <td className="py-0 pr-2">
        <input
          type="checkbox"
          data-col="select"
          aria-label={`Select ${vm.name}`}
          checked={checked}
          onChange={() => onToggle(vm.id)}
        />
      </td>
      <td className={`${cell} font-medium`}>
        <Link to={`/vms/${vm.id}`} data-col="name" className="text-blue-700 hover:underline">
          {vm.name}
        </Link>
      </td>
      <td className={cell}>
        <Badge value={vm.state} />
      </td>
      <td className={cell}>{host ?? (vm.host_id ? vm.host_id.slice(0, 8) : '—')}</td>
      <td className={cell}>
        {vm.vcpu} / {formatMib(vm.mem_mib)}
      </td>
      <td className={`${cell} font-mono text-xs`}>{vm.guest_ip ?? vm.nics[0]?.ip ?? '—'}</td>
      <td className={cell}>{[vm.owner, vm.environment].filter(Boolean).join(' / ') || '—'}</td>
      <td className={cell} title={vm.tags.join(', ')}>
        {vm.tags.join(', ')}
      </td>
      <td className={`${cell} text-slate-500`}>{DAY.format(new Date(vm.created_at))}</td>
      <td className="py-0 pr-2">
        <VmActionMenu vm={vm} />
      </td>
    </tr>
  );
});

/** The list on a phone: one card per VM with the same facts and the same menu, nothing cut off. */
export function VmCards({
  rows,
  hostName,
  selected,
  onToggle,
}: {
  rows: Vm[];
  hostName: Map<string, string>;
  selected: Set<string>;
  onToggle: (id: string) => void;
}) {
  return (
    <ul className="flex flex-col gap-2" aria-label="Virtual machines" data-testid="vm-cards">
      {rows.map((vm) => (
        <li key={vm.id} data-vm-name={vm.name} className="rounded-md border border-slate-200 p-3">
          <div className="flex items-center gap-2">
            <input
              type="checkbox"
              aria-label={`Select ${vm.name}`}
              checked={selected.has(vm.id)}
              onChange={() => onToggle(vm.id)}
            />
            <Link to={`/vms/${vm.id}`} className="min-w-0 flex-1 truncate font-medium text-blue-700 hover:underline">
              {vm.name}
            </Link>
            <Badge value={vm.state} />
            <VmActionMenu vm={vm} />
          </div>
          <p className="mt-1 text-xs break-words text-slate-600">
            {vm.vcpu} vCPU · {formatMib(vm.mem_mib)} · {vm.guest_ip ?? vm.nics[0]?.ip ?? 'no address'} ·{' '}
            {(vm.host_id && hostName.get(vm.host_id)) ?? 'not placed'}
            {vm.owner || vm.environment ? ` · ${[vm.owner, vm.environment].filter(Boolean).join(' / ')}` : ''}
            {vm.tags.length ? ` · ${vm.tags.join(', ')}` : ''}
          </p>
        </li>
      ))}
    </ul>
  );
}
