import type { Vm } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { Button, Card, DefinitionList, Empty, ErrorState, Field, Loading } from '../../components/ui.tsx';
import { errorMessage, isMissingRoute } from '../../lib/api.ts';
import { formatBytes, formatMib } from '../../lib/format.ts';
import { request } from '../../lib/pending.ts';

/** GET of an endpoint from a later issue; a 404 route_not_found renders as "not available yet". */
function usePendingGet<T>(key: unknown[], path: string, opts: { refetchInterval?: number | false } = {}) {
  return useQuery({
    queryKey: key,
    queryFn: () => request<T>('GET', path),
    retry: false,
    refetchInterval: (q) => (q.state.error && isMissingRoute(q.state.error) ? false : (opts.refetchInterval ?? false)),
  });
}

interface RateLimit {
  bandwidth?: { size: number; refill_time_ms: number } | null;
  ops?: { size: number; refill_time_ms: number } | null;
}
const rate = (r: RateLimit | null | undefined) =>
  r?.bandwidth ? `${formatBytes((r.bandwidth.size * 1000) / r.bandwidth.refill_time_ms)}/s` : 'unlimited';

export function ConfigTab({ vm }: { vm: Vm }) {
  return (
    <div className="flex flex-col gap-4">
      <Card title="Machine">
        <DefinitionList
          items={[
            ['vCPUs', vm.vcpu],
            ['Memory', formatMib(vm.mem_mib)],
            ['SMT', vm.smt ? 'on' : 'off'],
            ['CPU template', vm.cpu_template],
            ['VMM', vm.vmm],
            ['Kernel image', <code key="k">{vm.kernel_image_id}</code>],
            ['Initrd image', vm.initrd_image_id ? <code key="i">{vm.initrd_image_id}</code> : 'none'],
            ['Root filesystem image', <code key="r">{vm.rootfs_image_id}</code>],
            ['Boot arguments', <code key="b">{vm.boot_args || '(default)'}</code>],
          ]}
        />
        <p className="mt-3 text-sm text-amber-800">
          Changes to vCPU, memory, VMM or boot source need a restart to take effect.
        </p>
      </Card>
      <AdvancedConfig vm={vm} />
    </div>
  );
}

function AdvancedConfig({ vm }: { vm: Vm }) {
  const q = usePendingGet<Record<string, unknown>>(['vm', vm.id, 'config'], `/v1/vms/${vm.id}/config`);
  return (
    <Card title="Devices (vsock, entropy, balloon, serial, logger)">
      {q.isPending ? (
        <Loading />
      ) : q.error ? (
        <ErrorState error={q.error} what="Device configuration" />
      ) : (
        <pre className="overflow-auto rounded bg-slate-50 p-3 text-xs">{JSON.stringify(q.data, null, 2)}</pre>
      )}
    </Card>
  );
}

interface Drive {
  drive_id: string;
  image_id?: string | null;
  size_bytes?: number | null;
  read_only: boolean;
  is_root_device?: boolean;
  rate_limiter?: RateLimit | null;
}

export function StorageTab({ vm }: { vm: Vm }) {
  const q = usePendingGet<{ items: Drive[] }>(['vm', vm.id, 'drives'], `/v1/vms/${vm.id}/drives`);
  return (
    <Card title="Drives">
      {q.isPending ? (
        <Loading />
      ) : q.error ? (
        <ErrorState error={q.error} what="Drive management" />
      ) : q.data.items.length === 0 ? (
        <Empty>No drives</Empty>
      ) : (
        <table className="w-full text-left text-sm">
          <thead className="text-xs text-slate-500 uppercase">
            <tr>
              <th className="py-1 pr-3">Drive</th>
              <th className="py-1 pr-3">Size</th>
              <th className="py-1 pr-3">Mode</th>
              <th className="py-1">Rate limit</th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {q.data.items.map((d) => (
              <tr key={d.drive_id}>
                <td className="py-1.5 pr-3 font-medium">
                  {d.drive_id}
                  {d.is_root_device ? ' (root)' : ''}
                </td>
                <td className="py-1.5 pr-3">{formatBytes(d.size_bytes)}</td>
                <td className="py-1.5 pr-3">{d.read_only ? 'read-only' : 'read-write'}</td>
                <td className="py-1.5">{rate(d.rate_limiter)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}

type NicRow = Vm['nics'][number] & { rx_rate_limiter?: RateLimit | null; tx_rate_limiter?: RateLimit | null };

export function NetworkTab({ vm }: { vm: Vm }) {
  const q = usePendingGet<{ items: NicRow[] }>(['vm', vm.id, 'nics'], `/v1/vms/${vm.id}/nics`);
  const limitsKnown = Boolean(q.data);
  const nics: NicRow[] = q.data?.items ?? vm.nics;
  return (
    <Card title="Network interfaces">
      {q.isPending ? (
        <Loading />
      ) : nics.length === 0 ? (
        <Empty>No network interfaces</Empty>
      ) : (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <thead className="text-xs text-slate-500 uppercase">
              <tr>
                <th className="py-1 pr-3">Interface</th>
                <th className="py-1 pr-3">Network</th>
                <th className="py-1 pr-3">MAC</th>
                <th className="py-1 pr-3">IP</th>
                <th className="py-1 pr-3">Gateway</th>
                <th className="py-1 pr-3">TAP</th>
                <th className="py-1">RX / TX limit</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {nics.map((n) => (
                <tr key={n.iface_id}>
                  <td className="py-1.5 pr-3 font-medium">{n.iface_id}</td>
                  <td className="py-1.5 pr-3">{n.network}</td>
                  <td className="py-1.5 pr-3 font-mono text-xs">{n.mac}</td>
                  <td className="py-1.5 pr-3 font-mono text-xs">{n.ip}</td>
                  <td className="py-1.5 pr-3 font-mono text-xs">{n.gateway}</td>
                  <td className="py-1.5 pr-3 font-mono text-xs">{n.tap ?? '—'}</td>
                  <td className="py-1.5">
                    {limitsKnown ? `${rate(n.rx_rate_limiter)} / ${rate(n.tx_rate_limiter)}` : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {q.error && !limitsKnown ? (
        <div className="mt-3">
          <ErrorState error={q.error} what="NIC management and rate limits" />
        </div>
      ) : null}
    </Card>
  );
}

export function MetadataTab({ vm }: { vm: Vm }) {
  const q = usePendingGet<Record<string, unknown>>(['vm', vm.id, 'mmds'], `/v1/vms/${vm.id}/mmds`);
  const [text, setText] = useState('');
  const [status, setStatus] = useState<string | null>(null);
  useEffect(() => {
    if (q.data) setText(JSON.stringify(q.data, null, 2));
  }, [q.data]);
  let parseError: string | undefined;
  try {
    if (text) JSON.parse(text);
  } catch (e) {
    parseError = `invalid JSON: ${(e as Error).message}`;
  }
  if (q.isPending) return <Loading />;
  if (q.error) return <ErrorState error={q.error} what="The metadata service (MMDS)" />;
  return (
    <Card title="MMDS data">
      <Field label="Metadata JSON" error={parseError}>
        {(p) => (
          <textarea
            {...p}
            rows={14}
            className={`${p.className} font-mono`}
            value={text}
            onChange={(e) => setText(e.target.value)}
          />
        )}
      </Field>
      <div className="mt-3 flex items-center gap-3">
        <Button
          variant="primary"
          disabled={Boolean(parseError)}
          onClick={() =>
            request('PUT', `/v1/vms/${vm.id}/mmds`, JSON.parse(text || '{}')).then(
              () => setStatus('Saved'),
              (e) => setStatus(errorMessage(e)),
            )
          }
        >
          Save
        </Button>
        {status ? (
          <span role="status" className="text-sm text-slate-600">
            {status}
          </span>
        ) : null}
      </div>
    </Card>
  );
}

export function LogsTab({ vm }: { vm: Vm }) {
  const [kind, setKind] = useState<'console' | 'vmm'>('console');
  const [follow, setFollow] = useState(true);
  const pre = useRef<HTMLPreElement>(null);
  const q = usePendingGet<{ text: string }>(
    ['vm', vm.id, 'logs', kind],
    `/v1/vms/${vm.id}/logs?kind=${kind}&tail=500`,
    { refetchInterval: follow ? 3000 : false },
  );
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll to the end whenever new log text arrives
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [q.data, follow]);
  return (
    <Card
      title="Logs"
      actions={
        <>
          <Field label="Log">
            {(p) => (
              <select {...p} value={kind} onChange={(e) => setKind(e.target.value as 'console' | 'vmm')}>
                <option value="console">Serial console</option>
                <option value="vmm">VMM log</option>
              </select>
            )}
          </Field>
          <label className="flex items-center gap-2 self-end pb-1.5 text-sm">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
          </label>
        </>
      }
    >
      {q.isPending ? (
        <Loading />
      ) : q.error ? (
        <ErrorState error={q.error} what="The log viewer" />
      ) : (
        <pre ref={pre} className="max-h-[60vh] overflow-auto rounded bg-slate-900 p-3 font-mono text-xs text-slate-100">
          {q.data.text || '(empty)'}
        </pre>
      )}
    </Card>
  );
}
