import { api } from '@nqvm/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmButton } from '../components/dialog.tsx';
import { Button, Card, DefinitionList, Empty, ErrorState, Field, Loading, PageHeader } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { formatAgo, formatDate } from '../lib/format.ts';
import { useMe } from '../lib/session.tsx';

export function SettingsPage() {
  const me = useMe();
  return (
    <>
      <PageHeader title="Settings" />
      <div className="flex flex-col gap-4">
        <Card title="Account">
          <DefinitionList
            items={[
              ['Username', me.username],
              ['Role', me.role],
              ['Signed in with', me.auth],
              ['User id', <code key="id">{me.id}</code>],
            ]}
          />
        </Card>
        <Tokens />
      </div>
    </>
  );
}

function Tokens() {
  const qc = useQueryClient();
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: () => call(api.auth.listTokens) });
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const create = useMutation({
    mutationFn: () =>
      call(api.auth.createToken, { body: { name, ...(days ? { expires_in_days: Number(days) } : {}) } }),
    onSuccess: (t) => {
      setCreated({ name: t.name, token: t.token });
      setCopied(false);
      setName('');
      setDays('');
      void qc.invalidateQueries({ queryKey: ['tokens'] });
    },
  });
  const errs = fieldErrors(create.error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };

  return (
    <Card title="API tokens">
      <form onSubmit={submit} className="mb-4 grid items-end gap-3 sm:grid-cols-[1fr_10rem_auto]">
        <Field label="Token name" error={errs.name}>
          {(p) => (
            <input
              {...p}
              required
              maxLength={100}
              value={name}
              onChange={(e) => setName(e.target.value)}
              placeholder="ci-deploy"
            />
          )}
        </Field>
        <Field label="Expires in days" error={errs.expires_in_days} hint="Empty: never">
          {(p) => (
            <input {...p} type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} />
          )}
        </Field>
        <Button type="submit" variant="primary" disabled={create.isPending}>
          Create token
        </Button>
      </form>
      {create.error && !Object.keys(errs).length ? (
        <p role="alert" className="mb-3 text-sm text-red-600">
          {errorMessage(create.error)}
        </p>
      ) : null}
      {created ? (
        <div className="mb-4 rounded-md border border-green-300 bg-green-50 p-3 text-sm" data-testid="new-token">
          <p className="mb-2 font-medium text-green-900">
            Token “{created.name}” created. Copy it now: it is shown only once.
          </p>
          <div className="flex flex-wrap items-center gap-2">
            <code className="rounded bg-white px-2 py-1 break-all" data-testid="new-token-value">
              {created.token}
            </code>
            <Button
              onClick={async () => {
                await navigator.clipboard?.writeText(created.token).catch(() => undefined);
                setCopied(true);
              }}
            >
              {copied ? 'Copied' : 'Copy'}
            </Button>
            <Button variant="ghost" onClick={() => setCreated(null)}>
              Done
            </Button>
          </div>
        </div>
      ) : null}
      {tokens.isPending ? (
        <Loading />
      ) : tokens.error ? (
        <ErrorState error={tokens.error} retry={() => tokens.refetch()} />
      ) : tokens.data.items.length === 0 ? (
        <Empty>No API tokens</Empty>
      ) : (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <thead className="text-xs text-slate-500 uppercase">
              <tr>
                <th className="py-1 pr-3">Name</th>
                <th className="py-1 pr-3">Prefix</th>
                <th className="py-1 pr-3">Created</th>
                <th className="py-1 pr-3">Expires</th>
                <th className="py-1 pr-3">Last used</th>
                <th className="py-1">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {tokens.data.items.map((t) => (
                <tr key={t.id} data-token-name={t.name}>
                  <td className="py-1.5 pr-3 font-medium">{t.name}</td>
                  <td className="py-1.5 pr-3 font-mono text-xs">{t.prefix}…</td>
                  <td className="py-1.5 pr-3">{formatDate(t.created_at)}</td>
                  <td className="py-1.5 pr-3">{t.expires_at ? formatDate(t.expires_at) : 'never'}</td>
                  <td className="py-1.5 pr-3">{t.last_used_at ? formatAgo(t.last_used_at) : 'never'}</td>
                  <td className="py-1.5 text-right">
                    <ConfirmButton
                      label="Revoke"
                      variant="danger"
                      title={`Revoke token ${t.name}?`}
                      description="Programs using this token stop working at once."
                      confirmLabel="Revoke"
                      onConfirm={async () => {
                        await call(api.auth.deleteToken, { params: { id: t.id } });
                        await qc.invalidateQueries({ queryKey: ['tokens'] });
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
