import { api, type Webhook } from '@nqvm/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmButton, Modal } from '../components/dialog.tsx';
import { ShownOnce } from '../components/shown-once.tsx';
import { Badge, Button, Card, Empty, ErrorState, Field, Loading, PageHeader } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { formatAgo, formatDate } from '../lib/format.ts';
import { useCan } from '../lib/session.tsx';

export function WebhooksPage() {
  const can = useCan();
  const [editing, setEditing] = useState<Webhook | 'new' | null>(null);
  const [secret, setSecret] = useState<{ url: string; secret: string } | null>(null);
  const hooks = useQuery({
    queryKey: ['webhooks'],
    queryFn: () => call(api.webhooks.list, { query: { limit: 500 } }),
  });
  return (
    <>
      <PageHeader
        title="Webhooks"
        actions={
          can('webhook:write') ? (
            <Button variant="primary" onClick={() => setEditing('new')}>
              New webhook
            </Button>
          ) : null
        }
      />
      {secret ? (
        <ShownOnce
          what={`Signing secret of ${secret.url}`}
          value={secret.secret}
          hint="Verify the Nqvm-Signature header of each delivery with it."
          onDone={() => setSecret(null)}
        />
      ) : null}
      {hooks.isPending ? (
        <Loading />
      ) : hooks.error ? (
        <ErrorState error={hooks.error} what="Webhooks" retry={() => hooks.refetch()} />
      ) : hooks.data.items.length === 0 ? (
        <Empty>No webhooks. A webhook POSTs matching events, signed, to a URL of yours.</Empty>
      ) : (
        <div className="flex flex-col gap-3">
          {hooks.data.items.map((h) => (
            <WebhookCard key={h.id} hook={h} onEdit={can('webhook:write') ? () => setEditing(h) : undefined} />
          ))}
        </div>
      )}
      {editing ? (
        <WebhookDialog
          hook={editing === 'new' ? null : editing}
          close={() => setEditing(null)}
          onCreated={(url, s) => setSecret({ url, secret: s })}
        />
      ) : null}
    </>
  );
}

function WebhookCard({ hook, onEdit }: { hook: Webhook; onEdit: (() => void) | undefined }) {
  const qc = useQueryClient();
  const [open, setOpen] = useState(false);
  return (
    <Card
      title={
        <span className="flex flex-wrap items-center gap-2 break-all" data-webhook-url={hook.url}>
          {hook.url}
          {hook.enabled ? null : <Badge value="disabled" />}
        </span>
      }
      actions={
        <>
          <Button variant="ghost" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
            {open ? 'Hide deliveries' : 'Deliveries'}
          </Button>
          {onEdit ? (
            <>
              <Button variant="ghost" onClick={onEdit}>
                Edit
              </Button>
              <ConfirmButton
                label="Delete"
                variant="danger"
                title={`Delete the webhook to ${hook.url}?`}
                description="Its deliveries are deleted with it; events are no longer sent."
                confirmLabel="Delete"
                onConfirm={async () => {
                  await call(api.webhooks.delete, { params: { id: hook.id } });
                  await qc.invalidateQueries({ queryKey: ['webhooks'] });
                }}
              />
            </>
          ) : null}
        </>
      }
    >
      <p className="text-sm text-slate-700">
        Events: <span className="font-mono text-xs">{hook.events.join(', ')}</span>
      </p>
      {hook.description ? <p className="mt-1 text-xs text-slate-500">{hook.description}</p> : null}
      {open ? <Deliveries id={hook.id} /> : null}
    </Card>
  );
}

function Deliveries({ id }: { id: string }) {
  const list = useQuery({
    queryKey: ['webhooks', id, 'deliveries'],
    queryFn: () => call(api.webhooks.deliveries, { params: { id }, query: { limit: 50 } }),
    refetchInterval: 5000,
  });
  if (list.isPending) return <Loading />;
  if (list.error) return <ErrorState error={list.error} retry={() => list.refetch()} />;
  if (list.data.items.length === 0) return <p className="mt-3 text-sm text-slate-500">No deliveries yet.</p>;
  return (
    <div className="mt-3 overflow-x-auto">
      <table className="w-full text-left text-sm" aria-label="Deliveries">
        <thead className="text-xs text-slate-500 uppercase">
          <tr>
            <th className="py-1 pr-3">Event</th>
            <th className="py-1 pr-3">Status</th>
            <th className="py-1 pr-3">Code</th>
            <th className="py-1 pr-3">Attempts</th>
            <th className="py-1 pr-3">Created</th>
            <th className="py-1">Last error / next attempt</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {list.data.items.map((d) => (
            <tr key={d.id} data-delivery-state={d.state}>
              <td className="py-1.5 pr-3 font-mono text-xs">{d.event_type}</td>
              <td className="py-1.5 pr-3">
                <Badge value={d.state} />
              </td>
              <td className="py-1.5 pr-3">{d.response_code ?? '—'}</td>
              <td className="py-1.5 pr-3">{d.attempts}</td>
              <td className="py-1.5 pr-3 whitespace-nowrap">{formatDate(d.created_at)}</td>
              <td className="py-1.5 text-xs text-slate-600">
                {d.last_error ?? ''}
                {d.next_attempt_at ? ` (next ${formatAgo(d.next_attempt_at)})` : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function WebhookDialog({
  hook,
  close,
  onCreated,
}: {
  hook: Webhook | null;
  close: () => void;
  onCreated: (url: string, secret: string) => void;
}) {
  const qc = useQueryClient();
  const [url, setUrl] = useState(hook?.url ?? '');
  const [events, setEvents] = useState((hook?.events ?? ['*']).join(', '));
  const [description, setDescription] = useState(hook?.description ?? '');
  const [enabled, setEnabled] = useState(hook?.enabled ?? true);
  const save = useMutation({
    mutationFn: async () => {
      const body = {
        url,
        description,
        enabled,
        events: events
          .split(/[\s,]+/)
          .map((e) => e.trim())
          .filter(Boolean),
      };
      if (hook) {
        await call(api.webhooks.update, { params: { id: hook.id }, body });
        return null;
      }
      return call(api.webhooks.create, { body });
    },
    onSuccess: async (created) => {
      if (created) onCreated(created.url, created.secret);
      await qc.invalidateQueries({ queryKey: ['webhooks'] });
      close();
    },
  });
  const errs = fieldErrors(save.error);
  const eventsError = Object.entries(errs).find(([k]) => k.startsWith('events'))?.[1];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  return (
    <Modal open onOpenChange={(o) => (o ? undefined : close())} title={hook ? 'Edit webhook' : 'New webhook'}>
      <form className="flex flex-col gap-3" onSubmit={submit}>
        <Field label="URL" error={errs.url}>
          {(p) => (
            <input
              {...p}
              type="url"
              required
              value={url}
              onChange={(e) => setUrl(e.target.value)}
              placeholder="https://example.com/hooks/nqvm"
            />
          )}
        </Field>
        <Field
          label="Events"
          error={eventsError}
          hint="Comma separated: vm.state, vm.*, alert.firing, or * for every event"
        >
          {(p) => <input {...p} required value={events} onChange={(e) => setEvents(e.target.value)} />}
        </Field>
        <Field label="Description" error={errs.description}>
          {(p) => <input {...p} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
          Enabled
        </label>
        {save.error && !Object.keys(errs).length ? (
          <p role="alert" className="text-sm text-red-600">
            {errorMessage(save.error)}
          </p>
        ) : null}
        <div className="flex justify-end gap-2">
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={save.isPending}>
            {hook ? 'Save' : 'Create webhook'}
          </Button>
        </div>
      </form>
    </Modal>
  );
}
