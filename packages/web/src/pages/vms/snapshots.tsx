import { api, type Snapshot, type Vm } from '@nqvm/api';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useNavigate } from 'react-router';
import { ConfirmButton, Modal } from '../../components/dialog.tsx';
import { Badge, Button, Card, DefinitionList, Empty, ErrorState, Field, Loading } from '../../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../../lib/api.ts';
import { formatBytes, formatDate } from '../../lib/format.ts';
import { useCan } from '../../lib/session.tsx';
import { SnapshotCompare } from './snapshot-compare.tsx';

/** A default snapshot name that satisfies the API's Name pattern: `<vm>-<yyyymmdd-hhmmss>`. */
function defaultName(vm: Vm): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${vm.name.slice(0, 47)}-${stamp}`;
}

/** Snapshots of one VM: create Full/Diff, see sizes, instantiate into a new VM, delete. */
export function SnapshotsTab({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const [name, setName] = useState('');
  const [busy, setBusy] = useState<'Full' | 'Diff' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const can = useCan();
  const q = useQuery({
    queryKey: ['snapshots', vm.id],
    queryFn: () => call(api.snapshots.listForVm, { params: { id: vm.id } }),
  });
  const refresh = () => qc.invalidateQueries({ queryKey: ['snapshots', vm.id] });
  const create = async (e: FormEvent, type: 'Full' | 'Diff') => {
    e.preventDefault();
    setError(null);
    setBusy(type);
    try {
      const body = { name: name.trim() || defaultName(vm), snapshot_type: type };
      await call(api.snapshots.create, { params: { id: vm.id }, body });
      setName('');
      await refresh();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };
  const canSnapshot = vm.state === 'running' || vm.state === 'paused';
  return (
    <div className="flex flex-col gap-4">
      {can('snapshot:write') ? (
        <Card title="Take a snapshot">
          <form className="flex flex-wrap items-end gap-2" onSubmit={(e) => create(e, 'Full')}>
            <div className="min-w-64 flex-1">
              <Field
                label="Snapshot name"
                error={fieldErrors(error).name}
                hint={
                  !canSnapshot
                    ? `The VM is ${vm.state}: start it first`
                    : vm.guest_ready_at
                      ? 'Empty: named after the VM and the time'
                      : 'The guest agent is not ready yet: a VM instantiated from a snapshot taken now cannot take its new address'
                }
              >
                {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} placeholder={vm.name} />}
              </Field>
            </div>
            <Button type="submit" variant="primary" disabled={!canSnapshot || busy !== null}>
              {busy === 'Full' ? 'Saving…' : 'Full snapshot'}
            </Button>
            <Button disabled={!canSnapshot || busy !== null} onClick={(e) => create(e, 'Diff')}>
              {busy === 'Diff' ? 'Saving…' : 'Diff snapshot'}
            </Button>
          </form>
          {error && !fieldErrors(error).name ? (
            <p role="alert" className="mt-3 text-sm text-red-700">
              {errorMessage(error)}
            </p>
          ) : null}
        </Card>
      ) : null}
      <Card title="Snapshots">
        {q.isPending ? (
          <Loading />
        ) : q.error ? (
          <ErrorState error={q.error} what="Snapshots" retry={() => q.refetch()} />
        ) : q.data.items.length === 0 ? (
          <Empty>No snapshots yet. A Full snapshot saves memory, devices and disk; a new VM can resume from it.</Empty>
        ) : (
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm">
              <thead className="text-xs text-slate-500 uppercase">
                <tr>
                  <th className="py-1 pr-3">Snapshot</th>
                  <th className="py-1 pr-3">Type</th>
                  <th className="py-1 pr-3">State</th>
                  <th className="py-1 pr-3">Memory + devices</th>
                  <th className="py-1 pr-3">Disk</th>
                  <th className="py-1 pr-3">Created</th>
                  <th className="py-1">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {q.data.items.map((s) => (
                  <SnapshotRow key={s.id} s={s} onDeleted={refresh} />
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      {q.data && q.data.items.length >= 2 ? <SnapshotCompare snapshots={q.data.items} /> : null}
    </div>
  );
}

function SnapshotRow({ s, onDeleted }: { s: Snapshot; onDeleted: () => Promise<unknown> }) {
  const [details, setDetails] = useState(false);
  const [instantiating, setInstantiating] = useState(false);
  const can = useCan();
  return (
    <tr aria-label={s.name}>
      <td className="py-1.5 pr-3 font-medium">{s.name}</td>
      <td className="py-1.5 pr-3">{s.snapshot_type}</td>
      <td className="py-1.5 pr-3">
        <Badge value={s.state} />
        {s.error ? <span className="ml-2 text-xs text-red-700">{s.error}</span> : null}
      </td>
      <td className="py-1.5 pr-3">{formatBytes(s.state_bytes)}</td>
      <td className="py-1.5 pr-3">{formatBytes(s.disk_bytes)}</td>
      <td className="py-1.5 pr-3">{formatDate(s.created_at)}</td>
      <td className="flex justify-end gap-2 py-1.5">
        <Button variant="ghost" onClick={() => setDetails(true)} aria-label={`Details of ${s.name}`}>
          Details
        </Button>
        {can('vm:write') ? (
          <Button disabled={s.state !== 'ready'} onClick={() => setInstantiating(true)}>
            Instantiate
          </Button>
        ) : null}
        {can('snapshot:write') ? (
          <ConfirmButton
            label="Delete"
            variant="danger"
            title={`Delete snapshot ${s.name}?`}
            description="Its memory, device state and disk files are removed. VMs created from it keep running."
            confirmLabel="Delete"
            onConfirm={() => call(api.snapshots.delete, { params: { id: s.id } }).then(onDeleted)}
          />
        ) : null}
        <Modal open={details} onOpenChange={setDetails} title={`Snapshot ${s.name}`}>
          <DefinitionList
            items={[
              ['Type', s.snapshot_type],
              ['State', s.state],
              ['Memory and device state', formatBytes(s.state_bytes)],
              ['Disk', formatBytes(s.disk_bytes)],
              ['Total', formatBytes(s.state_bytes + s.disk_bytes)],
              ['Created', formatDate(s.created_at)],
              ['Source VM', s.vm_id ? <code key="vm">{s.vm_id}</code> : 'deleted'],
              ['Id', <code key="id">{s.id}</code>],
            ]}
          />
        </Modal>
        <InstantiateDialog s={s} open={instantiating} onOpenChange={setInstantiating} />
      </td>
    </tr>
  );
}

function InstantiateDialog({
  s,
  open,
  onOpenChange,
}: {
  s: Snapshot;
  open: boolean;
  onOpenChange: (open: boolean) => void;
}) {
  const navigate = useNavigate();
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const vm = await call(api.snapshots.instantiate, { params: { id: s.id }, body: { name } });
      onOpenChange(false);
      navigate(`/vms/${vm.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const fe = fieldErrors(error);
  return (
    <Modal
      open={open}
      onOpenChange={onOpenChange}
      title={`Create a VM from ${s.name}`}
      description="The new VM gets its own disk copy, MAC, IP and hostname, and resumes where the snapshot left off."
    >
      <form onSubmit={submit} className="flex flex-col gap-3">
        <Field label="New VM name" error={fe.name}>
          {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        {error && !fe.name ? (
          <p role="alert" className="text-sm text-red-700">
            {errorMessage(error)}
          </p>
        ) : null}
        <div className="flex justify-end gap-2">
          <Button onClick={() => onOpenChange(false)}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy}>
            {busy ? 'Starting…' : 'Instantiate'}
          </Button>
        </div>
      </form>
    </Modal>
  );
}
