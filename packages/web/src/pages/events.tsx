import { api, type Event } from '@nqvm/api';
import { useInfiniteQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { useSearchParams } from 'react-router';
import { Badge, Button, Card, Empty, ErrorState, Field, Loading, PageHeader } from '../components/ui.tsx';
import { call } from '../lib/api.ts';
import { formatDate } from '../lib/format.ts';
import { onLiveEvent } from '../lib/live.ts';

const RESULTS = ['', 'ok', 'error', 'info'] as const;

export function EventsPage() {
  const [params, setParams] = useSearchParams();
  const filters = {
    resource_type: params.get('resource_type') || undefined,
    resource_id: params.get('resource_id') || undefined,
    action: params.get('action') || undefined,
    actor: params.get('actor') || undefined,
    result: (params.get('result') || undefined) as Event['result'] | undefined,
  };
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };
  return (
    <>
      <PageHeader title="Events" />
      <Card className="mb-4">
        <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-5">
          <Field label="Resource type">
            {(p) => (
              <input
                {...p}
                value={filters.resource_type ?? ''}
                onChange={(e) => set('resource_type', e.target.value)}
                placeholder="vm, image, host…"
              />
            )}
          </Field>
          <Field label="Resource id">
            {(p) => (
              <input {...p} value={filters.resource_id ?? ''} onChange={(e) => set('resource_id', e.target.value)} />
            )}
          </Field>
          <Field label="Action">
            {(p) => (
              <input
                {...p}
                value={filters.action ?? ''}
                onChange={(e) => set('action', e.target.value)}
                placeholder="start, create…"
              />
            )}
          </Field>
          <Field label="Actor">
            {(p) => (
              <input
                {...p}
                value={filters.actor ?? ''}
                onChange={(e) => set('actor', e.target.value)}
                placeholder="user:admin"
              />
            )}
          </Field>
          <Field label="Result">
            {(p) => (
              <select {...p} value={filters.result ?? ''} onChange={(e) => set('result', e.target.value)}>
                {RESULTS.map((r) => (
                  <option key={r} value={r}>
                    {r || 'any'}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
      </Card>
      <EventList filters={filters} />
    </>
  );
}

type Filters = {
  resource_type?: string | undefined;
  resource_id?: string | undefined;
  action?: string | undefined;
  actor?: string | undefined;
  result?: Event['result'] | undefined;
};

function matches(e: Event, f: Filters): boolean {
  return (
    (!f.resource_type || e.resource_type === f.resource_type) &&
    (!f.resource_id || e.resource_id === f.resource_id) &&
    (!f.action || e.action === f.action) &&
    (!f.actor || e.actor === f.actor) &&
    (!f.result || e.result === f.result)
  );
}

/** Events newest first with cursor paging; new ones arrive over the live WebSocket and are prepended. */
export function EventList({ filters }: { filters: Filters }) {
  const [live, setLive] = useState<Event[]>([]);
  const key = JSON.stringify(filters);
  const q = useInfiniteQuery({
    queryKey: ['events', 'list', key],
    queryFn: ({ pageParam }) =>
      call(api.events.list, { query: { ...filters, limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } }),
    initialPageParam: '',
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    staleTime: Number.POSITIVE_INFINITY,
  });
  // biome-ignore lint/correctness/useExhaustiveDependencies: the key string stands for the filters
  useEffect(() => {
    setLive([]);
    return onLiveEvent((e) => (matches(e, filters) ? setLive((xs) => [e, ...xs].slice(0, 500)) : undefined));
  }, [key]);

  if (q.isPending) return <Loading />;
  if (q.error) return <ErrorState error={q.error} retry={() => q.refetch()} />;
  const byId = new Map<string, Event>();
  for (const e of [...live, ...q.data.pages.flatMap((p) => p.items)]) if (!byId.has(e.id)) byId.set(e.id, e);
  const rows = [...byId.values()];
  if (rows.length === 0) return <Empty>No events match</Empty>;
  return (
    <Card>
      <div className="overflow-x-auto">
        <table className="w-full text-left text-sm">
          <thead className="text-xs text-slate-500 uppercase">
            <tr>
              <th className="py-1 pr-3">When</th>
              <th className="py-1 pr-3">Result</th>
              <th className="py-1 pr-3">Event</th>
              <th className="py-1 pr-3">Actor</th>
              <th className="py-1">Detail</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {rows.map((e) => (
              <tr key={e.id} data-event-id={e.id}>
                <td className="py-1.5 pr-3 whitespace-nowrap text-slate-600">{formatDate(e.at)}</td>
                <td className="py-1.5 pr-3">
                  <Badge value={e.result} />
                </td>
                <td className="py-1.5 pr-3 font-medium whitespace-nowrap">
                  {e.resource_type}.{e.action}
                  {e.resource_id ? (
                    <span className="ml-1 font-mono text-xs text-slate-400">{e.resource_id.slice(0, 8)}</span>
                  ) : null}
                </td>
                <td className="py-1.5 pr-3 whitespace-nowrap">{e.actor}</td>
                <td
                  className="max-w-md truncate py-1.5 font-mono text-xs text-slate-500"
                  title={JSON.stringify(e.detail)}
                >
                  {Object.keys(e.detail).length ? JSON.stringify(e.detail) : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {q.hasNextPage ? (
        <Button className="mt-3" onClick={() => q.fetchNextPage()} disabled={q.isFetchingNextPage}>
          {q.isFetchingNextPage ? 'Loading…' : 'Load more'}
        </Button>
      ) : null}
    </Card>
  );
}
