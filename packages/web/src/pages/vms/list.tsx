import { api, VM_STATES, type VmState } from '@nqvm/api';
import { useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useLayoutEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { Modal } from '../../components/dialog.tsx';
import { Button, Card, Empty, ErrorState, Field, Loading, PageHeader } from '../../components/ui.tsx';
import { call, errorMessage, listAllHosts } from '../../lib/api.ts';
import { useMediaQuery } from '../../lib/media.ts';
import { useCan } from '../../lib/session.tsx';
import { type BulkAction, type BulkResult, bulkVmAction } from './vm-actions.ts';
import { VmCards, VmTable } from './vm-table.tsx';

type Sort = 'name' | '-name' | 'created_at' | '-created_at' | 'state' | '-state';
const FILTERS = ['search', 'state', 'host_id', 'owner', 'environment', 'tag'] as const;
const BULK: BulkAction[] = ['start', 'stop', 'pause', 'resume', 'delete'];

export function VmListPage() {
  const [params, setParams] = useSearchParams();
  const qc = useQueryClient();
  const [searchText, setSearchText] = useState(params.get('search') ?? '');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const can = useCan();
  const [bulk, setBulk] = useState<BulkAction | null>(null);
  const [results, setResults] = useState<BulkResult[] | null>(null);
  const [busy, setBusy] = useState(false);
  const sort = (params.get('sort') as Sort | null) ?? '-created_at';
  const limit = Number(params.get('limit') ?? 100);
  const query = {
    ...Object.fromEntries(FILTERS.map((f) => [f, params.get(f) || undefined])),
    sort,
    limit,
  } as {
    search?: string;
    state?: VmState;
    host_id?: string;
    owner?: string;
    environment?: string;
    tag?: string;
    sort: Sort;
    limit: number;
  };

  const filtered = FILTERS.some((f) => params.get(f));
  const narrow = useMediaQuery('(max-width: 639px)');
  const [filtersOpen, setFiltersOpen] = useState(false);
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  // Debounce typing in the search box into the URL (and so the query).
  // biome-ignore lint/correctness/useExhaustiveDependencies: only the text drives this
  useEffect(() => {
    const t = setTimeout(
      () => (searchText !== (params.get('search') ?? '') ? set('search', searchText) : undefined),
      250,
    );
    return () => clearTimeout(t);
  }, [searchText]);

  const hosts = useQuery({ queryKey: ['hosts'], queryFn: listAllHosts, enabled: can('host:read') });
  const hostName = useMemo(() => new Map((hosts.data?.items ?? []).map((h) => [h.id, h.name])), [hosts.data]);
  const vms = useInfiniteQuery({
    queryKey: ['vms', 'list', query],
    queryFn: ({ pageParam }) => {
      return call(api.vms.list, { query: { ...query, ...(pageParam ? { cursor: pageParam } : {}) } }).then((page) => {
        performance.mark('vm-list:data');
        return page;
      });
    },
    initialPageParam: '',
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const rows = useMemo(() => vms.data?.pages.flatMap((p) => p.items) ?? [], [vms.data]);

  // Performance marks for bench/web-bundle.ts: time from data in hand to rows in the DOM.
  useLayoutEffect(() => {
    if (!rows.length) return;
    performance.mark('vm-list:rendered');
    try {
      performance.measure(`vm-list:render:${rows.length}`, 'vm-list:data', 'vm-list:rendered');
    } catch {
      // the data mark is missing when rows came from the cache; nothing to measure then
    }
  }, [rows]);

  const toggle = useCallback(
    (id: string) =>
      setSelected((s) => {
        const n = new Set(s);
        if (n.has(id)) n.delete(id);
        else n.add(id);
        return n;
      }),
    [],
  );
  const allSelected = rows.length > 0 && !vms.hasNextPage && rows.every((v) => selected.has(v.id));
  const [selectingAll, setSelectingAll] = useState(false);
  // "All" means every VM matching the filters, not only the pages loaded so far: load the rest first.
  const selectAll = async () => {
    if (allSelected) return setSelected(new Set());
    setSelectingAll(true);
    try {
      let res = vms;
      while (res.hasNextPage) res = await res.fetchNextPage();
      setSelected(new Set((res.data?.pages ?? []).flatMap((p) => p.items.map((v) => v.id))));
    } finally {
      setSelectingAll(false);
    }
  };
  const runBulk = async () => {
    if (!bulk) return;
    setBusy(true);
    try {
      setResults(await bulkVmAction([...selected], bulk));
      setSelected(new Set());
      await qc.invalidateQueries({ queryKey: ['vms'] });
    } catch (err) {
      setResults([{ id: '*', ok: false, error: errorMessage(err) }]);
    } finally {
      setBusy(false);
    }
  };
  const sortHeader = (key: 'name' | 'state' | 'created_at', label: string) => {
    const active = sort.replace('-', '') === key;
    const desc = sort.startsWith('-');
    return (
      <th className="py-1 pr-3" aria-sort={active ? (desc ? 'descending' : 'ascending') : 'none'}>
        <button
          type="button"
          className="uppercase hover:text-slate-800"
          onClick={() => set('sort', active && !desc ? `-${key}` : key)}
        >
          {label} {active ? (desc ? '↓' : '↑') : ''}
        </button>
      </th>
    );
  };

  return (
    <>
      <PageHeader
        title="Virtual machines"
        actions={
          can('vm:write') ? (
            <Link
              to="/vms/new"
              className="rounded-md bg-blue-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-blue-700"
            >
              Create VM
            </Link>
          ) : null
        }
      />
      <Card className="mb-4">
        <div className="grid gap-3 sm:grid-cols-3 lg:grid-cols-7">
          <Field label="Search">
            {(p) => (
              <input
                {...p}
                type="search"
                value={searchText}
                onChange={(e) => setSearchText(e.target.value)}
                placeholder="name or description"
              />
            )}
          </Field>
          {narrow ? (
            <Button aria-expanded={filtersOpen} className="self-end" onClick={() => setFiltersOpen((o) => !o)}>
              {filtersOpen ? 'Hide filters' : `Filters${filtered ? ' (set)' : ''}`}
            </Button>
          ) : null}
          {!narrow || filtersOpen ? (
            <>
              <Field label="State">
                {(p) => (
                  <select {...p} value={query.state ?? ''} onChange={(e) => set('state', e.target.value)}>
                    <option value="">any</option>
                    {VM_STATES.map((s) => (
                      <option key={s} value={s}>
                        {s}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field label="Host">
                {(p) => (
                  <select {...p} value={query.host_id ?? ''} onChange={(e) => set('host_id', e.target.value)}>
                    <option value="">any</option>
                    {(hosts.data?.items ?? []).map((h) => (
                      <option key={h.id} value={h.id}>
                        {h.name}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field label="Owner">
                {(p) => <input {...p} value={query.owner ?? ''} onChange={(e) => set('owner', e.target.value)} />}
              </Field>
              <Field label="Environment">
                {(p) => (
                  <input {...p} value={query.environment ?? ''} onChange={(e) => set('environment', e.target.value)} />
                )}
              </Field>
              <Field label="Tag">
                {(p) => <input {...p} value={query.tag ?? ''} onChange={(e) => set('tag', e.target.value)} />}
              </Field>
              <Field label="Page size">
                {(p) => (
                  <select {...p} value={String(limit)} onChange={(e) => set('limit', e.target.value)}>
                    {[50, 100, 500].map((n) => (
                      <option key={n} value={n}>
                        {n}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            </>
          ) : null}
        </div>
      </Card>
      {selected.size > 0 && can('vm:write') ? (
        <div
          className="mb-3 flex flex-wrap items-center gap-2 rounded-md bg-blue-50 p-2 text-sm"
          role="toolbar"
          aria-label="Bulk actions"
        >
          <span className="font-medium">{selected.size} selected</span>
          {BULK.map((a) => (
            <Button
              key={a}
              variant={a === 'delete' ? 'danger' : 'secondary'}
              onClick={() => {
                setResults(null);
                setBulk(a);
              }}
            >
              {a}
            </Button>
          ))}
          <Button variant="ghost" onClick={() => setSelected(new Set())}>
            Clear
          </Button>
        </div>
      ) : null}
      {vms.isPending ? (
        <Loading />
      ) : vms.error ? (
        <ErrorState error={vms.error} what="The VM list" retry={() => vms.refetch()} />
      ) : rows.length === 0 ? (
        filtered ? (
          <Empty>
            No VM matches these filters.{' '}
            <button
              type="button"
              className="text-blue-700 underline"
              onClick={() => {
                setSearchText('');
                setParams(new URLSearchParams(), { replace: true });
              }}
            >
              Clear the filters
            </button>
          </Empty>
        ) : (
          <Empty>
            No VMs yet.{' '}
            <Link to="/vms/new" className="text-blue-700 underline">
              Create one
            </Link>
          </Empty>
        )
      ) : (
        <Card>
          {narrow ? (
            <VmCards rows={rows} hostName={hostName} selected={selected} onToggle={toggle} />
          ) : (
            <VmTable
              rows={rows}
              hostName={hostName}
              selected={selected}
              onToggle={toggle}
              header={
                <tr aria-rowindex={1}>
                  <th className="py-1 pr-2">
                    <input
                      type="checkbox"
                      aria-label={vms.hasNextPage ? 'Select all matching VMs' : 'Select all VMs'}
                      checked={allSelected}
                      disabled={selectingAll}
                      onChange={selectAll}
                    />
                  </th>
                  {sortHeader('name', 'Name')}
                  {sortHeader('state', 'State')}
                  <th className="py-1 pr-3">Host</th>
                  <th className="py-1 pr-3">vCPU / memory</th>
                  <th className="py-1 pr-3">IP</th>
                  <th className="py-1 pr-3">Owner / env</th>
                  <th className="py-1 pr-3">Tags</th>
                  {sortHeader('created_at', 'Created')}
                  <th className="py-1 pr-2">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              }
            />
          )}
          <div className="mt-3 flex items-center gap-3 text-sm text-slate-600">
            <span role="status">
              {rows.length} shown{vms.hasNextPage ? ' (more match)' : ''}
              {selectingAll ? ' — selecting all matching…' : ''}
            </span>
            {vms.hasNextPage ? (
              <Button onClick={() => vms.fetchNextPage()} disabled={vms.isFetchingNextPage}>
                {vms.isFetchingNextPage ? 'Loading…' : 'Load more'}
              </Button>
            ) : null}
          </div>
        </Card>
      )}
      <Modal
        open={bulk !== null}
        onOpenChange={(o) => (o ? undefined : setBulk(null))}
        title={`${bulk ?? ''} ${selected.size || results?.length || 0} VMs?`}
      >
        {results ? (
          <>
            <ul className="mb-3 max-h-64 overflow-auto text-sm" aria-label="Results">
              {results.map((r) => (
                <li key={r.id} className={r.ok ? 'text-green-700' : 'text-red-700'}>
                  {r.id.slice(0, 8)}: {r.ok ? 'accepted' : r.error}
                </li>
              ))}
            </ul>
            <div className="flex justify-end">
              <Button onClick={() => setBulk(null)}>Close</Button>
            </div>
          </>
        ) : (
          <div className="flex justify-end gap-2">
            <Button onClick={() => setBulk(null)}>Cancel</Button>
            <Button variant={bulk === 'delete' ? 'danger' : 'primary'} disabled={busy} onClick={runBulk}>
              {busy ? 'Working…' : `Yes, ${bulk}`}
            </Button>
          </div>
        )}
      </Modal>
    </>
  );
}
