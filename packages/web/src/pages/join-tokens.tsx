import { api } from '@nqvm/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmButton } from '../components/dialog.tsx';
import { ShownOnce } from '../components/shown-once.tsx';
import { Badge, Button, Card, Empty, ErrorState, Field, Loading, PageHeader, TableHead } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { formatDate } from '../lib/format.ts';
import { useCan } from '../lib/session.tsx';

const TTLS: [number, string][] = [
  [600, '10 minutes'],
  [3600, '1 hour'],
  [86_400, '1 day'],
  [7 * 86_400, '7 days'],
];

/** Host join tokens (admin): a new host's agent joins the cluster once with one. */
export function JoinTokensPage() {
  const can = useCan();
  const qc = useQueryClient();
  const [ttl, setTtl] = useState(3600);
  const [description, setDescription] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const tokens = useQuery({
    queryKey: ['join-tokens'],
    queryFn: () => call(api.joinTokens.list, { query: { limit: 500 } }),
  });
  const create = useMutation({
    mutationFn: () => call(api.joinTokens.create, { body: { ttl_s: ttl, description } }),
    onSuccess: async (t) => {
      setCreated(t.token);
      setDescription('');
      await qc.invalidateQueries({ queryKey: ['join-tokens'] });
    },
  });
  const errs = fieldErrors(create.error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <>
      <PageHeader title="Join tokens" />
      <Card>
        {can('host:write') ? (
          <form onSubmit={submit} className="mb-4 grid items-end gap-3 sm:grid-cols-[1fr_10rem_auto]">
            <Field label="What it is for" error={errs.description}>
              {(p) => (
                <input
                  {...p}
                  maxLength={200}
                  value={description}
                  onChange={(e) => setDescription(e.target.value)}
                  placeholder="rack 3, host 12"
                />
              )}
            </Field>
            <Field label="Expires after" error={errs.ttl_s}>
              {(p) => (
                <select {...p} value={ttl} onChange={(e) => setTtl(Number(e.target.value))}>
                  {TTLS.map(([s, label]) => (
                    <option key={s} value={s}>
                      {label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Button type="submit" variant="primary" disabled={create.isPending}>
              Create join token
            </Button>
          </form>
        ) : null}
        {create.error && !Object.keys(errs).length ? (
          <p role="alert" className="mb-3 text-sm text-red-600">
            {errorMessage(create.error)}
          </p>
        ) : null}
        {created ? (
          <ShownOnce
            what="Join token created"
            value={created}
            hint="Start the new host's agent with it; one host joins with it, once."
            onDone={() => setCreated(null)}
          />
        ) : null}
        {tokens.isPending ? (
          <Loading />
        ) : tokens.error ? (
          <ErrorState error={tokens.error} what="Join tokens" retry={() => tokens.refetch()} />
        ) : tokens.data.items.length === 0 ? (
          <Empty>No join tokens</Empty>
        ) : (
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm">
              <TableHead columns={['For', 'State', 'Created', 'Expires', 'Used']} actions />
              <tbody className="divide-y divide-slate-100">
                {tokens.data.items.map((t) => (
                  <tr key={t.id} data-join-token={t.description}>
                    <td className="py-1.5 pr-3">
                      {t.description || <span className="text-slate-400">—</span>}
                      <span className="block text-xs text-slate-500">by {t.created_by}</span>
                    </td>
                    <td className="py-1.5 pr-3">
                      <Badge value={t.state} />
                    </td>
                    <td className="py-1.5 pr-3 whitespace-nowrap">{formatDate(t.created_at)}</td>
                    <td className="py-1.5 pr-3 whitespace-nowrap">{formatDate(t.expires_at)}</td>
                    <td className="py-1.5 pr-3 whitespace-nowrap">
                      {t.used_at
                        ? `${formatDate(t.used_at)}${t.host_id ? ` (host ${t.host_id.slice(0, 8)})` : ''}`
                        : '—'}
                    </td>
                    <td className="py-1.5 text-right">
                      {can('host:write') ? (
                        <ConfirmButton
                          label="Revoke"
                          variant="danger"
                          title="Revoke this join token?"
                          description="No host can join with it any more; hosts that joined with it stay."
                          confirmLabel="Revoke"
                          onConfirm={async () => {
                            await call(api.joinTokens.delete, { params: { id: t.id } });
                            await qc.invalidateQueries({ queryKey: ['join-tokens'] });
                          }}
                        />
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
    </>
  );
}
