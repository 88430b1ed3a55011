import '@xterm/xterm/css/xterm.css';
import { api, type ConsoleControl, type Vm, wsRoutes } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'react';
import { Button, Card, ErrorState } from '../../components/ui.tsx';
import { call, openSocket } from '../../lib/api.ts';
import { onThemeChange, terminalTheme } from '../../lib/theme.ts';

/** Where the console stands; the last three end, and say why, until the user reconnects. */
type Status =
  | { kind: 'connecting' }
  | { kind: 'open' }
  | { kind: 'reconnecting' }
  | { kind: 'stopped' }
  | { kind: 'disconnected'; reason: string };

const LABEL: Record<Status['kind'], string> = {
  connecting: 'connecting',
  open: 'open',
  reconnecting: 'host reconnecting',
  stopped: 'VM not running',
  disconnected: 'disconnected',
};

/** A console exists while the VMM runs: running or paused (a paused guest shows its screen, frozen). */
export function consoleAvailable(state: Vm['state']): boolean {
  return state === 'running' || state === 'paused';
}

/**
 * xterm.js over the VM's shell WebSocket. Binary frames carry terminal bytes both ways; text frames are JSON
 * control messages: `hello` (scrollback follows; a second one after a reconnect replaces the screen),
 * `status` (connected / reconnecting / vm_gone) from the server, `resize` from the client. The fit addon sizes
 * the terminal to its box; each new size goes to the guest (its agent sets the console's window size).
 */
export default function TerminalTab({ vm }: { vm: Vm }) {
  const host = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<Status>({ kind: 'connecting' });
  const [attempt, setAttempt] = useState(0);
  const live = consoleAvailable(vm.state);
  const creds = useQuery({
    queryKey: ['vm', vm.id, 'shell'],
    queryFn: () => call(api.vmObserve.shell, { params: { id: vm.id } }),
    retry: false,
  });

  // biome-ignore lint/correctness/useExhaustiveDependencies: attempt forces a reconnect
  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const term = new Terminal({
      convertEol: false,
      cursorBlink: true,
      fontSize: 13,
      rows: 28,
      scrollback: 5000,
      theme: terminalTheme(),
    });
    const fitAddon = new FitAddon();
    term.loadAddon(fitAddon);
    term.open(el);
    term.textarea?.setAttribute('aria-label', `Terminal of ${vm.name}`);
    const observer = new ResizeObserver(() => fitAddon.fit());
    observer.observe(el);
    const themeWatch = onThemeChange(() => {
      term.options.theme = terminalTheme();
    });
    if (!live) {
      setStatus({ kind: 'stopped' });
      term.write('The VM is not running: its serial console opens when it starts.\r\n');
      return () => {
        observer.disconnect();
        themeWatch();
        term.dispose();
      };
    }
    const ws = openSocket(wsRoutes.shell, { id: vm.id });
    ws.binaryType = 'arraybuffer';
    setStatus({ kind: 'connecting' });
    const send = (msg: object) => (ws.readyState === WebSocket.OPEN ? ws.send(JSON.stringify(msg)) : undefined);
    const encoder = new TextEncoder();
    let hellos = 0;
    // Events of a socket this effect already closed (unmount, reconnect) must not overwrite the next one's status.
    let disposed = false;
    let ended = false;
    ws.onopen = () => {
      if (disposed) return;
      setStatus({ kind: 'open' });
      send({ type: 'resize', cols: term.cols, rows: term.rows });
      term.focus();
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return term.write(new Uint8Array(m.data as ArrayBuffer));
      const msg = JSON.parse(m.data) as ConsoleControl;
      if (msg.type === 'hello' && hellos++ > 0) term.reset();
      if (disposed) return;
      if (msg.type === 'status') {
        if (msg.state === 'vm_gone') {
          ended = true;
          setStatus({ kind: 'disconnected', reason: 'the VM is gone from its host (stopped or deleted)' });
        } else setStatus({ kind: msg.state === 'reconnecting' ? 'reconnecting' : 'open' });
      }
      if (msg.type === 'error') {
        ended = true;
        setStatus({ kind: 'disconnected', reason: msg.message });
      }
    };
    ws.onclose = (e) => {
      if (disposed || ended) return;
      setStatus({
        kind: 'disconnected',
        reason: e.reason || (e.code === 1006 ? 'the connection to the manager was lost' : `closed (code ${e.code})`),
      });
    };
    const input = term.onData((data) => (ws.readyState === WebSocket.OPEN ? ws.send(encoder.encode(data)) : undefined));
    const resize = term.onResize(({ cols, rows }) => send({ type: 'resize', cols, rows }));
    return () => {
      disposed = true;
      observer.disconnect();
      themeWatch();
      input.dispose();
      resize.dispose();
      ws.close();
      term.dispose();
    };
  }, [vm.id, live, attempt]);

  const ended = status.kind === 'stopped' || status.kind === 'disconnected';
  return (
    <div className="flex flex-col gap-4">
      <Card title="Credentials">
        {creds.data ? (
          <div className="flex flex-wrap items-center gap-3 text-sm">
            {creds.data.username ? (
              <CopyValue label="Username" value={creds.data.username} />
            ) : (
              'No guest user was set.'
            )}
            {creds.data.password ? <CopyValue label="Password" value={creds.data.password} secret /> : null}
          </div>
        ) : creds.error ? (
          <ErrorState error={creds.error} what="Shell credentials" />
        ) : (
          <p className="text-sm text-slate-500">Username: {vm.username ?? '—'}</p>
        )}
      </Card>
      <Card
        title={`Serial console (${LABEL[status.kind]})`}
        actions={
          <Button onClick={() => setAttempt((n) => n + 1)} disabled={!live || status.kind === 'connecting'}>
            Reconnect
          </Button>
        }
      >
        {ended ? (
          <p role="status" className="mb-2 text-sm text-amber-800">
            {status.kind === 'stopped'
              ? `The VM is ${vm.state}: there is no console to attach to.`
              : `Disconnected: ${status.reason}.`}
          </p>
        ) : null}
        <div
          ref={host}
          className="h-[70vh] min-h-72 overflow-hidden rounded border border-slate-200 bg-white p-2"
          data-testid="terminal"
          data-status={status.kind}
        />
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
