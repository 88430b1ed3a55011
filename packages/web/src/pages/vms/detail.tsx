import { api, type Vm } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { Tabs } from 'radix-ui';
import { lazy, type ReactNode, Suspense } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { ConfirmButton } from '../../components/dialog.tsx';
import { Badge, Card, DefinitionList, ErrorState, Loading, PageHeader } from '../../components/ui.tsx';
import { call, listAllHosts } from '../../lib/api.ts';
import { formatDate, formatDuration, formatMib } from '../../lib/format.ts';
import { useCan } from '../../lib/session.tsx';
import { EventList } from '../events.tsx';
import { ConfigTab } from './config-tab.tsx';
import { NetworkTab, StorageTab } from './devices-tab.tsx';
import { LogsTab } from './logs-tab.tsx';
import { MetadataTab } from './metadata-tab.tsx';
import { SnapshotsTab } from './snapshots.tsx';
import { LIFECYCLE, useRunAction, VmActionMenu } from './vm-menu.tsx';

const TerminalTab = lazy(() => import('./terminal.tsx'));
const MetricsTab = lazy(() => import('./metrics.tsx'));

const TABS = [
  'overview',
  'config',
  'storage',
  'network',
  'terminal',
  'metrics',
  'snapshots',
  'metadata',
  'logs',
  'events',
] as const;
/** Tabs that show nothing without a permission beyond vm:read: a viewer never gets a shell or MMDS data. */
const TAB_PERMISSION: Partial<Record<(typeof TABS)[number], 'vm:shell' | 'mmds:read'>> = {
  terminal: 'vm:shell',
  metadata: 'mmds:read',
};

/** A tab's editing forms for a caller who may only look: controls disabled, action buttons gone. */
function ReadOnlyUnless({ write, children }: { write: boolean; children: ReactNode }) {
  if (write) return children;
  return (
    <fieldset disabled className="min-w-0 [&_button]:hidden" data-read-only>
      {children}
    </fieldset>
  );
}

export function VmDetailPage() {
  const { id = '', tab = 'overview' } = useParams();
  const navigate = useNavigate();
  const can = useCan();
  const write = can('vm:write');
  const vm = useQuery({ queryKey: ['vm', id], queryFn: () => call(api.vms.get, { params: { id } }) });
  if (vm.isPending) return <Loading />;
  if (vm.error) return <ErrorState error={vm.error} what="This VM" retry={() => vm.refetch()} />;
  const v = vm.data;
  return (
    <>
      <PageHeader
        title={v.name}
        actions={
          <span data-testid="vm-state-badge">
            <Badge value={v.state} />
          </span>
        }
      />
      <p className="-mt-3 mb-4 text-sm text-slate-500">
        <Link to="/vms" className="text-blue-700 hover:underline">
          Virtual machines
        </Link>{' '}
        / {v.name}
      </p>
      <Tabs.Root value={tab} onValueChange={(t) => navigate(`/vms/${id}/${t}`, { replace: true })}>
        <Tabs.List aria-label="VM sections" className="mb-4 flex gap-1 overflow-x-auto border-b border-slate-200">
          {TABS.filter((t) => {
            const p = TAB_PERMISSION[t];
            return !p || can(p);
          }).map((t) => (
            <Tabs.Trigger
              key={t}
              value={t}
              className="border-b-2 border-transparent px-3 py-1.5 text-sm capitalize whitespace-nowrap text-slate-600 data-[state=active]:border-blue-600 data-[state=active]:text-blue-700"
            >
              {t}
            </Tabs.Trigger>
          ))}
        </Tabs.List>
        <Tabs.Content value="overview">
          <Overview vm={v} />
        </Tabs.Content>
        <Tabs.Content value="config">
          <ReadOnlyUnless write={write}>
            <ConfigTab vm={v} />
          </ReadOnlyUnless>
        </Tabs.Content>
        <Tabs.Content value="storage">
          <ReadOnlyUnless write={write}>
            <StorageTab vm={v} />
          </ReadOnlyUnless>
        </Tabs.Content>
        <Tabs.Content value="network">
          <ReadOnlyUnless write={write}>
            <NetworkTab vm={v} />
          </ReadOnlyUnless>
        </Tabs.Content>
        <Tabs.Content value="terminal">
          <Suspense fallback={<Loading />}>
            <TerminalTab vm={v} />
          </Suspense>
        </Tabs.Content>
        <Tabs.Content value="metrics">
          <Suspense fallback={<Loading />}>
            <MetricsTab vm={v} />
          </Suspense>
        </Tabs.Content>
        <Tabs.Content value="snapshots">
          <SnapshotsTab vm={v} />
        </Tabs.Content>
        <Tabs.Content value="metadata">
          <MetadataTab vm={v} />
        </Tabs.Content>
        <Tabs.Content value="logs">
          <LogsTab vm={v} />
        </Tabs.Content>
        <Tabs.Content value="events">
          <EventList filters={{ resource_id: v.id }} />
        </Tabs.Content>
      </Tabs.Root>
    </>
  );
}

function Overview({ vm }: { vm: Vm }) {
  const run = useRunAction(vm);
  const can = useCan();
  const hosts = useQuery({ queryKey: ['hosts'], queryFn: listAllHosts, enabled: can('host:read') });
  const host = hosts.data?.items.find((h) => h.id === vm.host_id);
  // The guest agent answers only while the VM runs; an old ready time says nothing about a stopped VM.
  const guest =
    vm.state === 'running'
      ? vm.guest_ready_at
        ? 'ready'
        : 'waiting for guest agent'
      : vm.state === 'paused'
        ? 'paused with the VM'
        : 'not running';
  return (
    <div className="flex flex-col gap-4">
      {can('vm:write') ? (
        <Card title="Actions">
          <div className="flex flex-wrap gap-2">
            {LIFECYCLE.filter((a) => a.action !== 'delete' && a.when.includes(vm.state)).map((a) => (
              <ConfirmButton
                key={a.action}
                label={a.label}
                variant={a.danger ? 'danger' : 'secondary'}
                title={`${a.label} ${vm.name}?`}
                description={a.explain}
                confirmLabel={a.label}
                onConfirm={() => run(a)}
              />
            ))}
            <VmActionMenu vm={vm} label="More actions" />
          </div>
          {vm.last_error ? (
            <p role="alert" className="mt-3 text-sm text-red-700">
              Last error: {vm.last_error}
            </p>
          ) : null}
        </Card>
      ) : vm.last_error ? (
        <p role="alert" className="text-sm text-red-700">
          Last error: {vm.last_error}
        </p>
      ) : null}
      <Card title="Details">
        <DefinitionList
          items={[
            ['State', <Badge key="s" value={vm.state} />],
            [
              'Guest agent',
              <span key="g" className="inline-flex items-center gap-1.5">
                <span
                  aria-hidden
                  className={`h-2 w-2 rounded-full ${guest === 'ready' ? 'bg-green-500' : 'bg-slate-400'}`}
                />
                {guest}
              </span>,
            ],
            [
              'Host',
              host ? (
                <Link key="h" to="/hosts" className="text-blue-700 hover:underline">
                  {host.name}
                </Link>
              ) : (
                (vm.host_id ?? 'not placed')
              ),
            ],
            ['IP address', vm.guest_ip ?? vm.nics[0]?.ip ?? '—'],
            ['Uptime', vm.state === 'running' ? formatDuration(vm.booted_at) : '—'],
            ['VMM', vm.vmm],
            ['Machine', `${vm.vcpu} vCPU, ${formatMib(vm.mem_mib)}${vm.smt ? ', SMT' : ''}`],
            ['Owner / environment', [vm.owner, vm.environment].filter(Boolean).join(' / ') || '—'],
            ['Tags', vm.tags.join(', ') || '—'],
            ['Restart policy', `${vm.restart_policy} (restarted ${vm.restart_count}×)`],
            ['Created', formatDate(vm.created_at)],
            ['Description', vm.description || '—'],
            ['Id', <code key="id">{vm.id}</code>],
          ]}
        />
      </Card>
    </div>
  );
}
