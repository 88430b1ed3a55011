import type { Vm } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { Button, Card, ErrorState, Field, Loading } from '../../components/ui.tsx';
import { errorMessage, isMissingRoute } from '../../lib/api.ts';
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
