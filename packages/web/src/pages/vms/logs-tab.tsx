import { api, LOG_MAX_LINES, type LogSource, type Vm } from '@nqvm/api';
import { useEffect, useMemo, useRef, useState } from 'react';
import { Button, Card, ErrorState, Field } from '../../components/ui.tsx';
import { callRaw } from '../../lib/api.ts';

type VmLog = Extract<LogSource, 'vm-console' | 'vm-vmm'>;
const LOGS: Record<VmLog, { label: string; empty: string }> = {
  'vm-console': { label: 'Serial console', empty: 'The guest has written nothing to its serial console yet.' },
  'vm-vmm': {
    label: 'VMM log',
    empty: 'The VMM has written nothing: QEMU logs only warnings and errors here, so an empty log is a good sign.',
  },
};
/** Lines kept in the browser while following; older ones are dropped (download fetches them again). */
const KEEP_LINES = 10_000;

type StreamState = { kind: 'loading' } | { kind: 'live' } | { kind: 'ended' } | { kind: 'error'; error: unknown };

/** `GET /v1/logs/tail` as text: the last lines, and with `follow` every new line until the stream is closed. */
function useLogText(vmId: string, source: VmLog, follow: boolean, attempt: number) {
  const [text, setText] = useState('');
  const [state, setState] = useState<StreamState>({ kind: 'loading' });
  // biome-ignore lint/correctness/useExhaustiveDependencies: attempt forces a new request
  useEffect(() => {
    const ac = new AbortController();
    setText('');
    setState({ kind: 'loading' });
    // A followed log that is empty answers nothing (not even headers) until its first line: already following.
    if (follow) setState({ kind: 'live' });
    void (async () => {
      const res = await callRaw(api.logs.tail, {
        query: { source, vm_id: vmId, lines: follow ? 1000 : LOG_MAX_LINES, follow },
        signal: ac.signal,
      });
      if (!follow) {
        setText(await res.text());
        return setState({ kind: 'ended' });
      }
      const reader = res.body?.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) break;
        const piece = decoder.decode(chunk.value, { stream: true });
        setText((t) => trimLines(t + piece));
      }
      setState({ kind: 'ended' });
    })().catch((error: unknown) => {
      if (!ac.signal.aborted) setState({ kind: 'error', error });
    });
    return () => ac.abort();
  }, [vmId, source, follow, attempt]);
  return { text, state };
}

function trimLines(text: string): string {
  let cut = text.length;
  for (let n = 0; n < KEEP_LINES && cut > 0; n++) cut = text.lastIndexOf('\n', cut - 1);
  return cut > 0 ? text.slice(cut + 1) : text;
}

/** Escape sequences and carriage returns the console emits are noise in a text view. */
function cleanLine(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping terminal control sequences is the point
  return line.replace(/\x1b\[[0-9;?]*[A-Za-z]|\r/g, '');
}

export function LogsTab({ vm }: { vm: Vm }) {
  const [source, setSource] = useState<VmLog>('vm-console');
  const [follow, setFollow] = useState(true);
  const [search, setSearch] = useState('');
  const [attempt, setAttempt] = useState(0);
  const { text, state } = useLogText(vm.id, source, follow, attempt);
  const pre = useRef<HTMLPreElement>(null);
  const lines = useMemo(() => (text ? text.replace(/\n$/, '').split('\n').map(cleanLine) : []), [text]);
  const needle = search.trim().toLowerCase();
  const shown = useMemo(
    () => (needle ? lines.filter((l) => l.toLowerCase().includes(needle)) : lines),
    [lines, needle],
  );

  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll to the end whenever new lines arrive
  useEffect(() => {
    if (follow && !needle && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [shown, follow, needle]);

  const download = async () => {
    const res = await callRaw(api.logs.tail, { query: { source, vm_id: vm.id, lines: LOG_MAX_LINES } });
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `${vm.name}-${source === 'vm-console' ? 'console' : 'vmm'}.log`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  const status =
    state.kind === 'loading'
      ? 'Loading…'
      : state.kind === 'live'
        ? 'Following new lines'
        : state.kind === 'ended'
          ? follow
            ? 'The log stream ended (the VM stopped or its host went away)'
            : `Last ${LOG_MAX_LINES} lines`
          : 'Failed';
  return (
    <Card
      title="Logs"
      actions={
        <div className="flex flex-wrap items-end gap-3">
          <Field label="Log">
            {(p) => (
              <select {...p} value={source} onChange={(e) => setSource(e.target.value as VmLog)}>
                {Object.entries(LOGS).map(([k, v]) => (
                  <option key={k} value={k}>
                    {v.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Search log">
            {(p) => <input {...p} type="search" value={search} onChange={(e) => setSearch(e.target.value)} />}
          </Field>
          <label className="flex items-center gap-2 pb-1.5 text-sm">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
          </label>
          <Button onClick={download}>Download</Button>
        </div>
      }
    >
      <p role="status" className="mb-2 flex flex-wrap items-center gap-3 text-sm text-slate-600">
        <span>{status}</span>
        {needle ? (
          <span>
            {shown.length} of {lines.length} lines match
          </span>
        ) : null}
        {state.kind === 'ended' && follow ? <Button onClick={() => setAttempt((n) => n + 1)}>Reconnect</Button> : null}
      </p>
      {state.kind === 'error' ? (
        <ErrorState error={state.error} what="This log" retry={() => setAttempt((n) => n + 1)} />
      ) : (
        <pre
          ref={pre}
          role="log"
          aria-label={LOGS[source].label}
          className="max-h-[60vh] min-h-40 overflow-auto whitespace-pre-wrap break-all rounded bg-slate-900 p-3 font-mono text-xs text-slate-100"
        >
          {state.kind === 'loading'
            ? ''
            : lines.length === 0
              ? LOGS[source].empty
              : shown.length === 0
                ? `No line contains “${search.trim()}”.`
                : shown.join('\n')}
        </pre>
      )}
    </Card>
  );
}
