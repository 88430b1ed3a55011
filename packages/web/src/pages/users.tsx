import { api, PASSWORD_MIN_LENGTH, type User } from '@nqvm/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmButton } from '../components/dialog.tsx';
import { Badge, Button, Card, Empty, ErrorState, Field, Loading, PageHeader, TableHead } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { formatAgo, formatDate } from '../lib/format.ts';
import { useMe } from '../lib/session.tsx';

/** Users (admin): create, change the role, disable or enable, delete. */
export function UsersPage() {
  const me = useMe();
  const canWrite = me.permissions.includes('user:write');
  const users = useQuery({
    queryKey: ['users'],
    queryFn: () => call(api.users.list, { query: { limit: 500 } }),
    enabled: me.permissions.includes('user:read'),
  });
  if (!me.permissions.includes('user:read'))
    return (
      <>
        <PageHeader title="Users" />
        <Empty>Only an admin manages users.</Empty>
      </>
    );
  return (
    <>
      <PageHeader title="Users" />
      <div className="flex flex-col gap-4">
        {canWrite ? <CreateUser /> : null}
        <Card title="All users">
          {users.isPending ? (
            <Loading />
          ) : users.error ? (
            <ErrorState error={users.error} retry={() => users.refetch()} />
          ) : users.data.items.length === 0 ? (
            <Empty>No users</Empty>
          ) : (
            <div className="overflow-x-auto">
              <table className="w-full text-left text-sm">
                <TableHead columns={['Username', 'Role', 'Status', 'Created', 'Last login']} actions />
                <tbody className="divide-y divide-slate-100">
                  {users.data.items.map((u) => (
                    <UserRow key={u.id} user={u} self={u.id === me.id} canWrite={canWrite} />
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

function UserRow({ user: u, self, canWrite }: { user: User; self: boolean; canWrite: boolean }) {
  const qc = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const update = async (body: { role?: 'admin' | 'user'; disabled?: boolean }) => {
    setError(null);
    try {
      await call(api.users.update, { params: { id: u.id }, body });
    } catch (err) {
      setError(err);
    }
    await qc.invalidateQueries({ queryKey: ['users'] });
  };
  return (
    <tr data-username={u.username}>
      <td className="py-1.5 pr-3 font-medium">
        {u.username}
        {self ? <span className="ml-1 text-xs text-slate-500">(you)</span> : null}
        {error ? (
          <p role="alert" className="text-xs font-normal text-red-600">
            {errorMessage(error)}
          </p>
        ) : null}
      </td>
      <td className="py-1.5 pr-3">
        {canWrite ? (
          <select
            aria-label={`Role of ${u.username}`}
            value={u.role}
            onChange={(e) => update({ role: e.target.value as 'admin' | 'user' })}
            className="rounded-md border border-slate-300 bg-white px-1.5 py-1 text-sm"
          >
            <option value="admin">admin</option>
            <option value="user">user</option>
          </select>
        ) : (
          u.role
        )}
      </td>
      <td className="py-1.5 pr-3">
        <Badge value={u.disabled ? 'disabled' : 'active'} />
      </td>
      <td className="py-1.5 pr-3">{formatDate(u.created_at)}</td>
      <td className="py-1.5 pr-3">{u.last_login_at ? formatAgo(u.last_login_at) : 'never'}</td>
      <td className="py-1.5 text-right whitespace-nowrap">
        {canWrite ? (
          <span className="inline-flex gap-2">
            {u.disabled ? (
              <Button onClick={() => update({ disabled: false })}>Enable</Button>
            ) : (
              <ConfirmButton
                label="Disable"
                title={`Disable ${u.username}?`}
                description="They cannot log in, and their sessions and API tokens stop working at once."
                confirmLabel="Disable"
                onConfirm={async () => {
                  await call(api.users.update, { params: { id: u.id }, body: { disabled: true } });
                  await qc.invalidateQueries({ queryKey: ['users'] });
                }}
              />
            )}
            <ConfirmButton
              label="Delete"
              variant="danger"
              title={`Delete ${u.username}?`}
              description="The user, their sessions and their API tokens are removed."
              confirmLabel="Delete"
              onConfirm={async () => {
                await call(api.users.delete, { params: { id: u.id } });
                await qc.invalidateQueries({ queryKey: ['users'] });
              }}
            />
          </span>
        ) : null}
      </td>
    </tr>
  );
}

function CreateUser() {
  const qc = useQueryClient();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<'admin' | 'user'>('user');
  const create = useMutation({
    mutationFn: () => call(api.users.create, { body: { username, password, role } }),
    onSuccess: () => {
      setUsername('');
      setPassword('');
      setRole('user');
      void qc.invalidateQueries({ queryKey: ['users'] });
    },
  });
  const errs = fieldErrors(create.error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Card title="Create a user">
      <form onSubmit={submit} className="grid items-end gap-3 sm:grid-cols-[1fr_1fr_8rem_auto]">
        <Field label="Username" error={errs.username}>
          {(p) => (
            <input {...p} required maxLength={64} value={username} onChange={(e) => setUsername(e.target.value)} />
          )}
        </Field>
        <Field label="Initial password" error={errs.password} hint={`At least ${PASSWORD_MIN_LENGTH} characters`}>
          {(p) => (
            <input
              {...p}
              type="password"
              autoComplete="new-password"
              required
              minLength={PASSWORD_MIN_LENGTH}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          )}
        </Field>
        <Field label="Role">
          {(p) => (
            <select {...p} value={role} onChange={(e) => setRole(e.target.value as 'admin' | 'user')}>
              <option value="user">user</option>
              <option value="admin">admin</option>
            </select>
          )}
        </Field>
        <Button type="submit" variant="primary" disabled={create.isPending}>
          Create user
        </Button>
      </form>
      {create.error && !Object.keys(errs).length ? (
        <p role="alert" className="mt-3 text-sm text-red-600">
          {errorMessage(create.error)}
        </p>
      ) : null}
    </Card>
  );
}
