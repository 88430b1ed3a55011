import { api } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { Badge, Card, DefinitionList, Empty, ErrorState, Loading, Meter, PageHeader } from '../components/ui.tsx';
import { call, listAllHosts } from '../lib/api.ts';
import { formatAgo, formatBytes, formatMib } from '../lib/format.ts';

export function HostsPage() {
  const hosts = useQuery({ queryKey: ['hosts'], queryFn: listAllHosts });
  // The overcommit ratios the scheduler places by come with the stats.
  const stats = useQuery({ queryKey: ['stats'], queryFn: () => call(api.stats.get) });
  const oc = stats.data?.capacity;
  return (
    <>
      <PageHeader title="Hosts" />
      {hosts.isPending ? (
        <Loading />
      ) : hosts.error ? (
        <ErrorState error={hosts.error} retry={() => hosts.refetch()} />
      ) : hosts.data.items.length === 0 ? (
        <Empty>No hosts yet. Start an agent with the join token printed by the manager to add one.</Empty>
      ) : (
        <div className="grid gap-4 lg:grid-cols-2">
          {hosts.data.items.map((h) => (
            <Card
              key={h.id}
              title={
                <span className="flex items-center gap-2">
                  {h.name} <Badge value={h.health} />
                </span>
              }
            >
              <div className="flex flex-col gap-3">
                {h.capacity ? (
                  <>
                    <Meter
                      label="vCPU allocated"
                      used={h.allocated.vcpu}
                      total={h.capacity.cpus}
                      overcommit={oc?.cpu_overcommit ?? 1}
                      format={String}
                    />
                    <Meter
                      label="Memory allocated"
                      used={h.allocated.mem_mib}
                      total={h.capacity.memory_mib}
                      overcommit={oc?.mem_overcommit ?? 1}
                      format={formatMib}
                    />
                    <Meter
                      label="Disk used"
                      used={h.capacity.disk_total_bytes - h.capacity.disk_free_bytes}
                      total={h.capacity.disk_total_bytes}
                      format={formatBytes}
                    />
                  </>
                ) : (
                  <p className="text-sm text-slate-500">No capacity reported yet</p>
                )}
                <DefinitionList
                  items={[
                    ['Agent', h.addr],
                    [
                      'VMs',
                      <Link key="vms" to={`/vms?host_id=${h.id}`} className="text-blue-700 hover:underline">
                        {h.allocated.vms}
                      </Link>,
                    ],
                    ['VMMs', h.capabilities?.vmm.join(', ') || '—'],
                    [
                      'Capabilities',
                      h.capabilities
                        ? [
                            h.capabilities.kvm ? 'KVM' : 'TCG only',
                            h.capabilities.vsock ? 'vsock' : 'no vsock',
                            h.capabilities.tc ? 'tc' : 'no tc',
                          ].join(' · ')
                        : '—',
                    ],
                    [
                      'Labels',
                      Object.entries(h.labels)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(', ') || '—',
                    ],
                    ['Last seen', formatAgo(h.last_seen_at)],
                  ]}
                />
              </div>
            </Card>
          ))}
        </div>
      )}
    </>
  );
}
