import '@xterm/xterm/css/xterm.css';
import type { Vm } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'react';
import { Button, Card, ErrorState } from '../../components/ui.tsx';
import { request } from '../../lib/pending.ts';

type Status = 'connecting' | 'open' | 'reconnecting' | 'closed';
type CellSize = { width: number; height: number };

// xterm's vertical scrollbar takes this much of the width (its default overviewRuler width).
const SCROLLBAR_PX = 14;

/** Whole cells that fit the host's content box, as @xterm/addon-fit computes them (not a dependency here). */
function fitSize(term: Terminal, host: HTMLElement): { cols: number; rows: number } | undefined {
  // xterm has no public cell size; the fit addon reads this same field.
  const core = (term as unknown as { _core?: { _renderService?: { dimensions?: { css: { cell: CellSize } } } } })._core;
  const cell = core?._renderService?.dimensions?.css.cell;
  if (!cell?.width || !cell.height) return undefined;
  const style = getComputedStyle(host);
  const px = (name: string) => Number.parseFloat(style.getPropertyValue(name)) || 0;
  const width = host.clientWidth - px('padding-left') - px('padding-right') - SCROLLBAR_PX;
  const height = host.clientHeight - px('padding-top') - px('padding-bottom');
  return { cols: Math.max(20, Math.floor(width / cell.width)), rows: Math.max(5, Math.floor(height / cell.height)) };
}

/**
 * xterm.js over `/v1/vms/{id}/shell/ws`. Binary frames carry terminal bytes both ways; text frames are JSON
 * control messages: `hello` (scrollback follows; a second one after a reconnect replaces the screen),
 * `status` (connected / reconnecting / vm_gone) from the server, `resize` from the client. The terminal fills its
 * box; each new size goes to the guest (its agent sets the console's window size).
 */
export default function TerminalTab({ vm }: { vm: Vm }) {
  const host = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>('connecting');
  const [attempt, setAttempt] = useState(0);
  const creds = useQuery({
    queryKey: ['vm', vm.id, 'shell'],
    queryFn: () => request<{ username: string; password: string | null }>('GET', `/v1/vms/${vm.id}/shell`),
    retry: false,
  });

  // biome-ignore lint/correctness/useExhaustiveDependencies: attempt forces a reconnect
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, rows: 28, scrollback: 5000 });
    term.open(el);
    // The guest gets the size through onResize below; the first fit runs when the observer first reports.
    const fit = () => {
      const size = fitSize(term, el);
      if (size && (size.cols !== term.cols || size.rows !== term.rows)) term.resize(size.cols, size.rows);
    };
    const observer = new ResizeObserver(fit);
    observer.observe(el);
    term.textarea?.setAttribute('aria-label', `Terminal of ${vm.name}`);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/v1/vms/${vm.id}/shell/ws`);
    ws.binaryType = 'arraybuffer';
    setStatus('connecting');
    const send = (msg: object) => (ws.readyState === WebSocket.OPEN ? ws.send(JSON.stringify(msg)) : undefined);
    const encoder = new TextEncoder();
    let hellos = 0;
    // Events of a socket this effect already closed (unmount, reconnect) must not overwrite the next one's status.
    let disposed = false;
    ws.onopen = () => {
      if (disposed) return;
      setStatus('open');
      send({ type: 'resize', cols: term.cols, rows: term.rows });
      term.focus();
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return term.write(new Uint8Array(m.data as ArrayBuffer));
      const msg = JSON.parse(m.data) as { type?: string; state?: string };
      if (msg.type === 'hello' && hellos++ > 0) term.reset();
      if (msg.type === 'status' && !disposed)
        setStatus(msg.state === 'reconnecting' ? 'reconnecting' : msg.state === 'vm_gone' ? 'closed' : 'open');
    };
    ws.onclose = () => {
      if (!disposed) setStatus('closed');
    };
    const input = term.onData((data) => (ws.readyState === WebSocket.OPEN ? ws.send(encoder.encode(data)) : undefined));
    const resize = term.onResize(({ cols, rows }) => send({ type: 'resize', cols, rows }));
    return () => {
      disposed = true;
      observer.disconnect();
      input.dispose();
      resize.dispose();
      ws.close();
      term.dispose();
    };
  }, [vm.id, attempt]);

  return (
    <div className="flex flex-col gap-4">
      <Card title="Credentials">
        {creds.data ? (
          <div className="flex flex-wrap items-center gap-3 text-sm">
            <CopyValue label="Username" value={creds.data.username} />
            {creds.data.password ? <CopyValue label="Password" value={creds.data.password} secret /> : null}
          </div>
        ) : creds.error ? (
          <ErrorState error={creds.error} what="Shell credentials" />
        ) : (
          <p className="text-sm text-slate-500">Username: {vm.username ?? '—'}</p>
        )}
      </Card>
      <Card
        title={`Serial console (${status})`}
        actions={
          <Button onClick={() => setAttempt((n) => n + 1)} disabled={status === 'connecting'}>
            Reconnect
          </Button>
        }
      >
        {status === 'closed' ? (
          <p role="status" className="mb-2 text-sm text-amber-800">
            Disconnected. The VM may not be running, or this manager does not offer the shell endpoint yet.
          </p>
        ) : null}
        <div ref={host} className="h-[70vh] min-h-96 overflow-hidden rounded bg-black p-2" data-testid="terminal" />
      </Card>
    </div>
  );
}

function CopyValue({ label, value, secret }: { label: string; value: string; secret?: boolean }) {
  const [shown, setShown] = useState(!secret);
  const [copied, setCopied] = useState(false);
  return (
    <span className="inline-flex items-center gap-2">
      <span className="text-slate-500">{label}:</span>
      <code className="rounded bg-slate-100 px-1.5">{shown ? value : '••••••••'}</code>
      {secret ? (
        <Button variant="ghost" onClick={() => setShown((s) => !s)}>
          {shown ? 'Hide' : 'Show'}
        </Button>
      ) : null}
      <Button
        variant="ghost"
        aria-label={`Copy ${label.toLowerCase()}`}
        onClick={() =>
          navigator.clipboard?.writeText(value).then(
            () => setCopied(true),
            () => undefined,
          )
        }
      >
        {copied ? 'Copied' : 'Copy'}
      </Button>
    </span>
  );
}
