import { api, type Operation, type Vm } from '@nqvm/api';
import { type QueryClient, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';
import { Link } from 'react-router';
import { call } from '../lib/api.ts';
import { formatAgo, formatBytes } from '../lib/format.ts';
import { onTaskDone, type Task, useTasks } from '../lib/tasks.ts';
import { useToast } from './toast.tsx';
import { Button, ProgressBar } from './ui.tsx';

const LIVE: Operation['state'][] = ['queued', 'running'];

/** A VM's name from whatever list or page already read it (no request per row); its short id otherwise. */
function vmName(qc: QueryClient, id: string): string {
  const one = qc.getQueryData<Vm>(['vm', id]);
  if (one) return one.name;
  for (const [, data] of qc.getQueriesData<{ pages?: { items: Vm[] }[]; items?: Vm[] }>({ queryKey: ['vms'] })) {
    const items = data?.pages?.flatMap((p) => p.items) ?? data?.items ?? [];
    const found = items.find((v) => v.id === id);
    if (found) return found.name;
  }
  return id.slice(0, 8);
}

function stateClass(state: string): string {
  if (state === 'failed' || state === 'cancelled') return 'text-red-700';
  if (state === 'succeeded') return 'text-green-700';
  return 'text-slate-600';
}

/**
 * The header's task panel: this window's actions followed to their end, the manager's recent operations (every
 * long VM action, whoever started it, with its step and outcome) and image imports with their bytes. Each end of an
 * action started here is also a toast: done, or the reason it failed.
 */
export function TaskPanel() {
  const tasks = useTasks();
  const toast = useToast();
  const [open, setOpen] = useState(false);
  const panelId = useId();
  const root = useRef<HTMLDivElement>(null);
  const ops = useQuery({
    queryKey: ['operations', 'recent'],
    queryFn: () => call(api.operations.list, { query: { limit: 15 } }),
    // Steps change without events: re-read while the panel shows a live one (events refresh it otherwise).
    refetchInterval: (q) => (open && q.state.data?.items.some((o) => LIVE.includes(o.state)) ? 2000 : false),
  });
  const imports = useQuery({
    queryKey: ['images', 'importing'],
    queryFn: () => call(api.images.list, { query: { state: 'importing', limit: 20 } }),
    refetchInterval: (q) => (open && q.state.data?.items.length ? 1000 : false),
  });
  useEffect(
    () =>
      onTaskDone((t) =>
        toast(
          t.state === 'succeeded' ? `${t.title}: done (${t.detail})` : `${t.title} failed: ${t.detail}`,
          t.state === 'succeeded' ? 'info' : 'error',
        ),
      ),
    [toast],
  );
  useEffect(() => {
    if (!open) return;
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    const onDown = (e: PointerEvent) => root.current?.contains(e.target as Node) || setOpen(false);
    document.addEventListener('keydown', onKey);
    document.addEventListener('pointerdown', onDown);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('pointerdown', onDown);
    };
  }, [open]);
  const liveOps = ops.data?.items.filter((o) => LIVE.includes(o.state)).length ?? 0;
  const running =
    Math.max(tasks.filter((t) => t.state === 'running').length, liveOps) + (imports.data?.items.length ?? 0);
  return (
    <div ref={root} className="relative">
      <Button
        variant="secondary"
        aria-label={`Tasks: ${running} running`}
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((o) => !o)}
      >
        Tasks{running ? ` (${running})` : ''}
      </Button>
      {open ? (
        <section
          id={panelId}
          aria-label="Tasks"
          className="absolute right-0 z-50 mt-1 flex max-h-[80vh] w-[min(92vw,26rem)] flex-col gap-3 overflow-auto rounded-md border border-slate-200 bg-white p-3 text-sm shadow-lg"
        >
          <TaskList tasks={tasks} />
          <Imports images={imports.data?.items ?? []} />
          <Operations ops={ops.data?.items ?? []} error={ops.error} />
        </section>
      ) : null}
    </div>
  );
}

function TaskList({ tasks }: { tasks: Task[] }) {
  return (
    <div>
      <h2 className="mb-2 font-semibold">Recent tasks</h2>
      {tasks.length === 0 ? (
        <p className="text-slate-500">Nothing started from this window yet.</p>
      ) : (
        <ul className="flex flex-col gap-2" aria-label="Recent tasks">
          {tasks.map((t) => (
            <li key={t.id} className="flex flex-col rounded border border-slate-200 p-2">
              <span className="flex items-center justify-between gap-2">
                <Link to={`/vms/${t.vmId}`} className="font-medium text-blue-700 hover:underline">
                  {t.title}
                </Link>
                <span className={stateClass(t.state)}>{t.state === 'running' ? 'in progress' : t.state}</span>
              </span>
              <span className="text-xs text-slate-500">
                {t.detail} · {Math.round(((t.endedAt ?? Date.now()) - t.startedAt) / 1000)} s
              </span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Imports({
  images,
}: {
  images: { id: string; name: string; bytes_done: number; bytes_total: number | null }[];
}) {
  if (!images.length) return null;
  return (
    <div>
      <h2 className="mb-2 font-semibold">Image imports</h2>
      <ul className="flex flex-col gap-2" aria-label="Image imports">
        {images.map((i) => (
          <li key={i.id} className="flex flex-col gap-1 rounded border border-slate-200 p-2">
            <span className="flex justify-between gap-2">
              <span className="font-medium">{i.name}</span>
              <span className="text-xs text-slate-600">
                {formatBytes(i.bytes_done)}
                {i.bytes_total ? ` of ${formatBytes(i.bytes_total)}` : ''}
              </span>
            </span>
            <ProgressBar value={i.bytes_done} max={i.bytes_total} label={`Import of ${i.name}`} />
          </li>
        ))}
      </ul>
    </div>
  );
}

function Operations({ ops, error }: { ops: Operation[]; error: unknown }) {
  const qc = useQueryClient();
  return (
    <div>
      <h2 className="mb-2 font-semibold">Operations</h2>
      {error ? <p className="text-red-700">Operations could not be read.</p> : null}
      {ops.length === 0 && !error ? <p className="text-slate-500">No operations yet.</p> : null}
      <ul className="flex flex-col gap-2" aria-label="Operations">
        {ops.map((o) => (
          <li key={o.id} className="flex flex-col rounded border border-slate-200 p-2" data-operation-id={o.id}>
            <span className="flex items-center justify-between gap-2">
              <span>
                <span className="font-medium capitalize">{o.kind}</span>{' '}
                {o.vm_id ? (
                  <Link to={`/vms/${o.vm_id}`} className="text-blue-700 hover:underline">
                    {vmName(qc, o.vm_id)}
                  </Link>
                ) : null}
              </span>
              <span className={stateClass(o.state)}>{o.state}</span>
            </span>
            <span className="text-xs text-slate-500">
              {LIVE.includes(o.state) ? `step ${o.step}` : (o.reason ?? o.step)}
              {o.attempts > 1 ? ` · attempt ${o.attempts}` : ''} · by {o.actor} · {formatAgo(o.created_at)}
            </span>
          </li>
        ))}
      </ul>
    </div>
  );
}
