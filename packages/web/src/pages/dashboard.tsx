import { api, type StatCount } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { Badge, Card, Empty, ErrorState, Loading, Meter, PageHeader } from '../components/ui.tsx';
import { call } from '../lib/api.ts';
import { formatAgo, formatMib } from '../lib/format.ts';

function CountList({
  title,
  items,
  param,
  empty,
}: {
  title: string;
  items: StatCount[];
  param: string;
  empty: string;
}) {
  return (
    <Card title={title}>
      {items.length === 0 ? (
        <p className="text-sm text-slate-500">{empty}</p>
      ) : (
        <ul className="flex flex-col gap-1 text-sm">
          {items.map((c) => (
            <li key={c.key} className="flex justify-between gap-2">
              <Link
                to={`/vms?${param}=${encodeURIComponent(c.key)}`}
                className="truncate text-blue-700 hover:underline"
              >
                {c.label || c.key || '(none)'}
              </Link>
              <span className="font-mono text-slate-700">{c.count}</span>
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

export function DashboardPage() {
  const stats = useQuery({ queryKey: ['stats'], queryFn: () => call(api.stats.get) });
  const events = useQuery({
    queryKey: ['events', 'recent'],
    queryFn: () => call(api.events.list, { query: { limit: 10 } }),
  });

  return (
    <>
      <PageHeader
        title="Dashboard"
        actions={
          <Link
            to="/vms/new"
            className="rounded-md bg-blue-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-blue-700"
          >
            Create VM
          </Link>
        }
      />
      {stats.isPending ? (
        <Loading />
      ) : stats.error ? (
        <ErrorState error={stats.error} what="VM statistics" retry={() => stats.refetch()} />
      ) : (
        <div className="flex flex-col gap-4">
          <div className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-5">
            <Card>
              <p className="text-xs text-slate-500">VMs</p>
              <p className="text-2xl font-semibold" data-testid="vm-total">
                {stats.data.vms.total}
              </p>
            </Card>
            {stats.data.vms.by_state.map((s) => (
              <Card key={s.key}>
                <Link to={`/vms?state=${s.key}`} className="block">
                  <Badge value={s.key} />
                  <p className="mt-1 text-2xl font-semibold">{s.count}</p>
                </Link>
              </Card>
            ))}
          </div>
          <Card title="Capacity allocated">
            <div className="grid gap-4 md:grid-cols-2">
              <Meter
                label="vCPU"
                used={stats.data.capacity.vcpu_allocated}
                total={stats.data.capacity.vcpu_total}
                overcommit={stats.data.capacity.cpu_overcommit}
                format={String}
              />
              <Meter
                label="Memory"
                used={stats.data.capacity.mem_mib_allocated}
                total={stats.data.capacity.mem_mib_total}
                overcommit={stats.data.capacity.mem_overcommit}
                format={formatMib}
              />
            </div>
            <p className="mt-3 text-sm text-slate-600">
              {stats.data.capacity.hosts_healthy} of {stats.data.capacity.hosts} hosts healthy
            </p>
          </Card>
          <div className="grid gap-4 md:grid-cols-2 xl:grid-cols-4">
            <CountList title="By host" items={stats.data.vms.by_host} param="host_id" empty="No VMs yet" />
            <CountList title="By owner" items={stats.data.vms.by_owner} param="owner" empty="No VMs yet" />
            <CountList
              title="By environment"
              items={stats.data.vms.by_environment}
              param="environment"
              empty="No VMs yet"
            />
            <CountList
              title="By tag"
              items={stats.data.vms.by_tag}
              param="tag"
              empty={stats.data.vms.total ? `None of the ${stats.data.vms.total} VMs has a tag` : 'No VMs yet'}
            />
          </div>
        </div>
      )}
      <Card
        title="Recent events"
        className="mt-4"
        actions={
          <Link to="/events" className="text-sm text-blue-700 hover:underline">
            All events
          </Link>
        }
      >
        {events.isPending ? (
          <Loading />
        ) : events.error ? (
          <ErrorState error={events.error} retry={() => events.refetch()} />
        ) : events.data.items.length === 0 ? (
          <Empty>No events yet</Empty>
        ) : (
          <ul className="divide-y divide-slate-100 text-sm">
            {events.data.items.map((e) => (
              <li key={e.id} className="flex flex-wrap items-center gap-2 py-1.5">
                <Badge value={e.result} />
                <span className="font-medium">
                  {e.resource_type}.{e.action}
                </span>
                <span className="text-slate-500">{e.actor}</span>
                <span className="ml-auto text-xs text-slate-400" title={e.at}>
                  {formatAgo(e.at)}
                </span>
              </li>
            ))}
          </ul>
        )}
      </Card>
    </>
  );
}
