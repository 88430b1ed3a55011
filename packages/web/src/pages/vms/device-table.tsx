import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { Empty, ErrorState, Loading } from '../../components/ui.tsx';

const th = 'py-1 pr-3';
const td = 'py-1.5 pr-3';

export interface DeviceColumn<T> {
  header: string;
  cell: (row: T) => ReactNode;
  /** Classes added to the cell's padding, e.g. 'font-mono text-xs'. */
  className?: string;
}

interface DeviceTableProps<T> {
  columns: DeviceColumn<T>[];
  rows: T[];
  rowKey: (row: T) => string;
  /** The row's data-* attributes, which the browser tests find rows by. */
  rowData: (row: T) => Record<`data-${string}`, string>;
  actions: (row: T) => ReactNode;
}

/** A VM's devices of one kind: one row each, its per-row buttons in a last, unlabelled column. */
export function DeviceTable<T>({ columns, rows, rowKey, rowData, actions }: DeviceTableProps<T>) {
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <thead className="text-xs text-slate-500 uppercase">
          <tr>
            {columns.map((c) => (
              <th key={c.header} className={th}>
                {c.header}
              </th>
            ))}
            <th className="py-1">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {rows.map((row) => (
            <tr key={rowKey(row)} {...rowData(row)}>
              {columns.map((c) => (
                <td key={c.header} className={c.className ? `${td} ${c.className}` : td}>
                  {c.cell(row)}
                </td>
              ))}
              <td className="flex justify-end gap-2 py-1.5">{actions(row)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The device list of a query: loading, its error with a retry, an empty note, or the table. */
export function DeviceList<T>({
  query,
  what,
  empty,
  ...table
}: Omit<DeviceTableProps<T>, 'rows'> & { query: UseQueryResult<{ items: T[] }>; what: string; empty: string }) {
  if (query.isPending) return <Loading />;
  if (query.error) return <ErrorState error={query.error} what={what} retry={() => query.refetch()} />;
  if (query.data.items.length === 0) return <Empty>{empty}</Empty>;
  return <DeviceTable rows={query.data.items} {...table} />;
}
