import {
  api,
  CreateSnapshotRequest,
  NameRequest,
  SaveTemplateRequest,
  type SnapshotType,
  UpdateVmRequest,
  type Vm,
} from '@nqvm/api';
import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { Modal } from '../../components/dialog.tsx';
import { useToast } from '../../components/toast.tsx';
import { Button, Field } from '../../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../../lib/api.ts';
import { trackTask } from '../../lib/tasks.ts';
import { schemaErrors } from '../../lib/validate.ts';
import { type Dialog, useRunAction } from './vm-menu.tsx';

/** The dialogs of the VM action menu, loaded on first use (they bring the schema checker along). */
export default function VmDialogs({ vm, dialog, close }: { vm: Vm; dialog: Dialog; close: () => void }) {
  const run = useRunAction(vm);
  if (!dialog) return null;
  switch (dialog.kind) {
    case 'confirm':
      return (
        <ConfirmDialog
          title={`${dialog.action.label} ${vm.name}?`}
          description={dialog.action.explain}
          confirmLabel={dialog.action.label}
          danger={dialog.action.danger ?? false}
          onConfirm={() => run(dialog.action)}
          close={close}
        />
      );
    case 'clone':
    case 'template':
    case 'snapshot':
      return <NameDialog vm={vm} kind={dialog.kind} close={close} />;
    case 'edit':
      return <EditDialog vm={vm} close={close} />;
  }
}

function ConfirmDialog(props: {
  title: string;
  description: string;
  confirmLabel: string;
  danger: boolean;
  onConfirm: () => Promise<unknown>;
  close: () => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <Modal
      open
      onOpenChange={(o) => (o ? undefined : props.close())}
      title={props.title}
      description={props.description}
    >
      {error ? (
        <p role="alert" className="mb-3 rounded bg-red-50 p-2 text-sm text-red-700">
          {errorMessage(error)}
        </p>
      ) : null}
      <div className="flex justify-end gap-2">
        <Button onClick={props.close}>Cancel</Button>
        <Button
          variant={props.danger ? 'danger' : 'primary'}
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            try {
              await props.onConfirm();
              props.close();
            } catch (err) {
              setError(err);
            } finally {
              setBusy(false);
            }
          }}
        >
          {props.confirmLabel}
        </Button>
      </div>
    </Modal>
  );
}

const NAMED = {
  clone: {
    title: 'Clone',
    field: 'Clone name',
    submit: 'Clone',
    explain: 'A copy with its own disk, MAC and address.',
  },
  template: { title: 'Save as template', field: 'Template name', submit: 'Save template', explain: '' },
  snapshot: { title: 'Snapshot', field: 'Snapshot name', submit: 'Take snapshot', explain: '' },
} as const;

/** Clone, save as template and snapshot: a name (and a little more), checked against the API's schema first. */
function NameDialog({ vm, kind, close }: { vm: Vm; kind: keyof typeof NAMED; close: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  const meta = NAMED[kind];
  const [name, setName] = useState(
    `${vm.name}-${kind === 'template' ? 'template' : kind === 'clone' ? 'copy' : 'snap'}`,
  );
  const [description, setDescription] = useState('');
  const [type, setType] = useState<SnapshotType>('Full');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    const local =
      kind === 'template'
        ? schemaErrors(SaveTemplateRequest, { name, ...(description ? { description } : {}) })
        : kind === 'clone'
          ? schemaErrors(NameRequest, { name })
          : schemaErrors(CreateSnapshotRequest, { name, snapshot_type: type });
    setErrors(local);
    if (Object.keys(local).length) return;
    setBusy(true);
    try {
      const params = { params: { id: vm.id } };
      if (kind === 'clone') {
        const copy = await call(api.snapshots.clone, { ...params, body: { name } });
        toast(`Clone of ${vm.name}: accepted`);
        trackTask(`Clone ${vm.name} → ${name}`, copy.id, { states: ['running', 'stopped'] }, copy.operation_id);
        await qc.invalidateQueries({ queryKey: ['vms'] });
        close();
        navigate(`/vms/${copy.id}`);
      } else if (kind === 'template') {
        await call(api.snapshots.saveTemplate, { ...params, body: { name, ...(description ? { description } : {}) } });
        toast(`Template ${name} saved`);
        await qc.invalidateQueries({ queryKey: ['templates'] });
        close();
      } else {
        const snap = await call(api.snapshots.create, { ...params, body: { name, snapshot_type: type } });
        toast(`Snapshot ${snap.name}: ${snap.state}`);
        await qc.invalidateQueries({ queryKey: ['vm', vm.id] });
        close();
      }
    } catch (err) {
      setErrors({ ...fieldErrors(err), ...(Object.keys(fieldErrors(err)).length ? {} : { form: errorMessage(err) }) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      onOpenChange={(o) => (o ? undefined : close())}
      title={`${meta.title}: ${vm.name}`}
      description={meta.explain || undefined}
    >
      <form
        className="flex flex-col gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Field label={meta.field} error={errors.name}>
          {(p) => <input {...p} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        {kind === 'template' ? (
          <Field label="Template description" error={errors.description}>
            {(p) => <input {...p} value={description} onChange={(e) => setDescription(e.target.value)} />}
          </Field>
        ) : null}
        {kind === 'snapshot' ? (
          <Field label="Snapshot type" hint="Diff saves only the memory pages changed since the last snapshot">
            {(p) => (
              <select {...p} value={type} onChange={(e) => setType(e.target.value as SnapshotType)}>
                <option value="Full">Full</option>
                <option value="Diff">Diff</option>
              </select>
            )}
          </Field>
        ) : null}
        {errors.form ? (
          <p role="alert" className="rounded bg-red-50 p-2 text-sm text-red-700">
            {errors.form}
          </p>
        ) : null}
        <div className="flex justify-end gap-2">
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy}>
            {busy ? 'Working…' : meta.submit}
          </Button>
        </div>
      </form>
    </Modal>
  );
}

/** Rename and labels (PATCH /v1/vms/{id}): applies at once in any state; validated as the API will. */
function EditDialog({ vm, close }: { vm: Vm; close: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState({
    name: vm.name,
    description: vm.description,
    tags: vm.tags.join(', '),
    owner: vm.owner,
    environment: vm.environment,
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const tags = form.tags
    .split(/[,\s]+/)
    .map((t) => t.trim())
    .filter(Boolean);
  const changed = {
    ...(form.name !== vm.name ? { name: form.name } : {}),
    ...(form.description !== vm.description ? { description: form.description } : {}),
    ...(tags.join(',') !== vm.tags.join(',') ? { tags } : {}),
    ...(form.owner !== vm.owner ? { owner: form.owner } : {}),
    ...(form.environment !== vm.environment ? { environment: form.environment } : {}),
  };
  const local = schemaErrors(UpdateVmRequest, changed);
  const tagError = Object.entries(local).find(([k]) => k.startsWith('tags'))?.[1];
  const shown: Record<string, string> = { ...local, ...(tagError ? { tags: tagError } : {}), ...errors };
  const nothing = Object.keys(changed).length === 0;
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => {
    setErrors({});
    setForm((f) => ({ ...f, [k]: e.target.value }));
  };
  const submit = async () => {
    if (nothing || Object.keys(local).length) return;
    setBusy(true);
    try {
      const updated = await call(api.vms.update, { params: { id: vm.id }, body: changed });
      toast(`${updated.name} saved`);
      await qc.invalidateQueries({ queryKey: ['vm', vm.id] });
      await qc.invalidateQueries({ queryKey: ['vms'] });
      close();
    } catch (err) {
      const f = fieldErrors(err);
      setErrors(Object.keys(f).length ? f : { form: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      onOpenChange={(o) => (o ? undefined : close())}
      title={`Edit ${vm.name}`}
      description="Applies at once, in any state; the guest keeps the hostname it booted with."
    >
      <form
        className="flex flex-col gap-3"
        aria-label="Edit VM details"
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Field label="VM name" error={shown.name}>
          {(p) => <input {...p} value={form.name} onChange={set('name')} />}
        </Field>
        <Field label="Description" error={shown.description}>
          {(p) => <input {...p} value={form.description} onChange={set('description')} />}
        </Field>
        <Field label="Tags" hint="Separated by commas or spaces" error={shown.tags}>
          {(p) => <input {...p} value={form.tags} onChange={set('tags')} />}
        </Field>
        <div className="grid gap-3 sm:grid-cols-2">
          <Field label="Owner" error={shown.owner}>
            {(p) => <input {...p} value={form.owner} onChange={set('owner')} />}
          </Field>
          <Field label="Environment" error={shown.environment}>
            {(p) => <input {...p} value={form.environment} onChange={set('environment')} />}
          </Field>
        </div>
        {shown.form ? (
          <p role="alert" className="rounded bg-red-50 p-2 text-sm text-red-700">
            {shown.form}
          </p>
        ) : null}
        <div className="flex justify-end gap-2">
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy || nothing || Object.keys(local).length > 0}>
            {busy ? 'Saving…' : 'Save'}
          </Button>
        </div>
      </form>
    </Modal>
  );
}
