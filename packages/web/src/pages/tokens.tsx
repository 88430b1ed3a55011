import { api, type UserPermission } from '@nqvm/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmButton } from '../components/dialog.tsx';
import { Button, Card, Empty, ErrorState, Field, Loading, PageHeader, TableHead } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { formatAgo, formatDate } from '../lib/format.ts';
import { useMe } from '../lib/session.tsx';

/** The caller's own API tokens: their scope, expiry and last use; create one with a subset of one's permissions. */
export function TokensPage() {
  const me = useMe();
  const qc = useQueryClient();
  const canWrite = me.permissions.includes('token:write');
  const tokens = useQuery({ queryKey: ['tokens'], queryFn: () => call(api.auth.listTokens) });
  return (
    <>
      <PageHeader title="API tokens" />
      <div className="flex flex-col gap-4">
        {canWrite ? <CreateToken /> : null}
        <Card title="Your tokens">
          {tokens.isPending ? (
            <Loading />
          ) : tokens.error ? (
            <ErrorState error={tokens.error} retry={() => tokens.refetch()} />
          ) : tokens.data.items.length === 0 ? (
            <Empty>No API tokens</Empty>
          ) : (
            <div className="overflow-x-auto">
              <table className="w-full text-left text-sm">
                <TableHead columns={['Name', 'Prefix', 'Scope', 'Created', 'Expires', 'Last used']} actions />
                <tbody className="divide-y divide-slate-100">
                  {tokens.data.items.map((t) => (
                    <tr key={t.id} data-token-name={t.name}>
                      <td className="py-1.5 pr-3 font-medium">{t.name}</td>
                      <td className="py-1.5 pr-3 font-mono text-xs">{t.prefix}…</td>
                      <td className="max-w-xs py-1.5 pr-3 text-xs" data-testid="token-scope">
                        {t.permissions ? t.permissions.filter((p) => p !== 'session').join(', ') : 'all of yours'}
                      </td>
                      <td className="py-1.5 pr-3">{formatDate(t.created_at)}</td>
                      <td className="py-1.5 pr-3">{t.expires_at ? formatDate(t.expires_at) : 'never'}</td>
                      <td className="py-1.5 pr-3">{t.last_used_at ? formatAgo(t.last_used_at) : 'never'}</td>
                      <td className="py-1.5 text-right">
                        {canWrite ? (
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
                        ) : null}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Card>
      </div>
    </>
  );
}

function CreateToken() {
  const me = useMe();
  const qc = useQueryClient();
  const grantable = me.permissions.filter((p) => p !== 'session');
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const [scoped, setScoped] = useState(false);
  const [picked, setPicked] = useState<Set<UserPermission>>(new Set());
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const create = useMutation({
    mutationFn: () =>
      call(api.auth.createToken, {
        body: {
          name,
          ...(days ? { expires_in_days: Number(days) } : {}),
          ...(scoped ? { permissions: [...picked] } : {}),
        },
      }),
    onSuccess: (t) => {
      setCreated({ name: t.name, token: t.token });
      setCopied(false);
      setName('');
      setDays('');
      setScoped(false);
      setPicked(new Set());
      void qc.invalidateQueries({ queryKey: ['tokens'] });
    },
  });
  const errs = fieldErrors(create.error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const toggle = (p: UserPermission) =>
    setPicked((s) => {
      const next = new Set(s);
      if (!next.delete(p)) next.add(p);
      return next;
    });

  return (
    <Card title="Create a token">
      <form onSubmit={submit} className="flex flex-col gap-3">
        <div className="grid items-end gap-3 sm:grid-cols-[1fr_12rem]">
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
          <Field label="Expires in days" error={errs.expires_in_days} hint="Empty: the manager's longest">
            {(p) => (
              <input {...p} type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} />
            )}
          </Field>
        </div>
        <fieldset className="text-sm">
          <legend className="mb-1 font-medium text-slate-700">Scope</legend>
          <label className="mr-4">
            <input type="radio" name="scope" checked={!scoped} onChange={() => setScoped(false)} /> All of your
            permissions
          </label>
          <label>
            <input type="radio" name="scope" checked={scoped} onChange={() => setScoped(true)} /> Only these:
          </label>
          {scoped ? (
            <div className="mt-2 grid grid-cols-2 gap-1 sm:grid-cols-4" data-testid="token-permissions">
              {grantable.map((p) => (
                <label key={p} className="font-mono text-xs">
                  <input type="checkbox" checked={picked.has(p)} onChange={() => toggle(p)} /> {p}
                </label>
              ))}
            </div>
          ) : null}
          {errs.permissions ? (
            <p role="alert" className="text-xs text-red-600">
              {errs.permissions}
            </p>
          ) : null}
        </fieldset>
        <div>
          <Button type="submit" variant="primary" disabled={create.isPending || (scoped && picked.size === 0)}>
            Create token
          </Button>
        </div>
      </form>
      {create.error && !Object.keys(errs).length ? (
        <p role="alert" className="mt-3 text-sm text-red-600">
          {errorMessage(create.error)}
        </p>
      ) : null}
      {created ? (
        <div className="mt-4 rounded-md border border-green-300 bg-green-50 p-3 text-sm" data-testid="new-token">
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
    </Card>
  );
}
