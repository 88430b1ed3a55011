import {
  api,
  CreateSnapshotRequest,
  NameRequest,
  SaveTemplateRequest,
  type SnapshotType,
  UpdateVmRequest,
  type Vm,
  type VmState,
} from '@nqvm/api';
import { useQueryClient } from '@tanstack/react-query';
import { DropdownMenu } from 'radix-ui';
import { type ReactNode, useState } from 'react';
import { useNavigate } from 'react-router';
import { Modal } from '../../components/dialog.tsx';
import { useToast } from '../../components/toast.tsx';
import { Button, Field } from '../../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../../lib/api.ts';
import { type Goal, trackTask } from '../../lib/tasks.ts';
import { schemaErrors } from '../../lib/validate.ts';
import { type BulkAction, vmAction } from './vm-actions.ts';

const ALIVE: VmState[] = ['creating', 'starting', 'running', 'paused', 'stopping', 'stopped', 'error', 'unknown'];

/** What each everyday action needs from the VM's state, what it does, and where it ends. */
export const LIFECYCLE: {
  action: BulkAction;
  label: string;
  when: VmState[];
  explain: string;
  goal: Goal;
  done: string;
  danger?: boolean;
}[] = [
  {
    action: 'start',
    label: 'Start',
    when: ['stopped', 'error'],
    explain: 'Boots the VM from its own disk.',
    goal: { states: ['running'] },
    done: 'is running',
  },
  {
    action: 'stop',
    label: 'Stop',
    when: ['running', 'paused', 'starting', 'unknown'],
    explain: 'ACPI power-down; the VMM is forced off if the guest does not stop within the timeout.',
    goal: { states: ['stopped'] },
    done: 'is stopped',
  },
  {
    action: 'pause',
    label: 'Pause',
    when: ['running'],
    explain: 'Freezes the vCPUs; memory stays allocated.',
    goal: { states: ['paused'] },
    done: 'is paused',
  },
  {
    action: 'resume',
    label: 'Resume',
    when: ['paused'],
    explain: 'Continues a paused VM.',
    goal: { states: ['running'] },
    done: 'is running again',
  },
  {
    action: 'ctrl-alt-del',
    label: 'Ctrl-Alt-Del',
    when: ['running'],
    explain: 'Sends Ctrl-Alt-Del (QEMU: the ACPI power button); the guest decides what to do.',
    goal: { states: ['running', 'stopped'] },
    done: 'received Ctrl-Alt-Del',
  },
  {
    action: 'delete',
    label: 'Delete',
    when: ALIVE,
    explain: 'Stops the VM and deletes its disks, TAPs and addresses. This cannot be undone.',
    goal: { gone: true },
    done: 'is deleted',
    danger: true,
  },
];

type Dialog =
  | { kind: 'confirm'; action: (typeof LIFECYCLE)[number] }
  | { kind: 'clone' }
  | { kind: 'template' }
  | { kind: 'snapshot' }
  | { kind: 'edit' }
  | null;

/** Everyday actions of one VM: a menu (list rows, the VM page) and the dialogs it opens. */
export function VmActionMenu({ vm, label }: { vm: Vm; label?: ReactNode }) {
  const [dialog, setDialog] = useState<Dialog>(null);
  const item =
    'flex cursor-default items-center rounded px-2 py-1.5 text-sm outline-none select-none data-[disabled]:text-slate-400 data-[highlighted]:bg-blue-50 data-[highlighted]:text-blue-800';
  return (
    <>
      <DropdownMenu.Root>
        <DropdownMenu.Trigger asChild>
          <Button variant="secondary" aria-label={label ? undefined : `Actions for ${vm.name}`}>
            {label ?? '⋯'}
          </Button>
        </DropdownMenu.Trigger>
        <DropdownMenu.Portal>
          <DropdownMenu.Content
            align="end"
            sideOffset={4}
            className="z-50 min-w-48 rounded-md border border-slate-200 bg-white p-1 shadow-lg"
          >
            {LIFECYCLE.filter((a) => a.action !== 'delete').map((a) => (
              <DropdownMenu.Item
                key={a.action}
                className={item}
                disabled={!a.when.includes(vm.state)}
                onSelect={() => setDialog({ kind: 'confirm', action: a })}
              >
                {a.label}
              </DropdownMenu.Item>
            ))}
            <DropdownMenu.Separator className="my-1 h-px bg-slate-200" />
            <DropdownMenu.Item
              className={item}
              disabled={!['running', 'stopped'].includes(vm.state)}
              onSelect={() => setDialog({ kind: 'clone' })}
            >
              Clone…
            </DropdownMenu.Item>
            <DropdownMenu.Item
              className={item}
              disabled={vm.state !== 'running'}
              onSelect={() => setDialog({ kind: 'snapshot' })}
            >
              Snapshot…
            </DropdownMenu.Item>
            <DropdownMenu.Item className={item} onSelect={() => setDialog({ kind: 'template' })}>
              Save as template…
            </DropdownMenu.Item>
            <DropdownMenu.Item
              className={item}
              disabled={vm.state === 'deleting'}
              onSelect={() => setDialog({ kind: 'edit' })}
            >
              Rename and edit details…
            </DropdownMenu.Item>
            <DropdownMenu.Separator className="my-1 h-px bg-slate-200" />
            <DropdownMenu.Item
              className={`${item} text-red-700`}
              disabled={vm.state === 'deleting'}
              onSelect={() => setDialog({ kind: 'confirm', action: LIFECYCLE.find((a) => a.action === 'delete')! })}
            >
              Delete…
            </DropdownMenu.Item>
          </DropdownMenu.Content>
        </DropdownMenu.Portal>
      </DropdownMenu.Root>
      <VmDialogs vm={vm} dialog={dialog} close={() => setDialog(null)} />
    </>
  );
}

/** Runs a lifecycle action after a confirm, follows it to its end in the task panel. */
export function useRunAction(vm: Vm) {
  const qc = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  return async (a: (typeof LIFECYCLE)[number]) => {
    await vmAction(vm.id, a.action);
    toast(`${a.label} ${vm.name}: accepted`);
    trackTask(`${a.label} ${vm.name}`, vm.id, a.goal);
    await qc.invalidateQueries({ queryKey: ['vm', vm.id] });
    await qc.invalidateQueries({ queryKey: ['vms'] });
    if (a.action === 'delete' && location.pathname.startsWith(`/vms/${vm.id}`)) navigate('/vms');
  };
}

function VmDialogs({ vm, dialog, close }: { vm: Vm; dialog: Dialog; close: () => void }) {
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
        trackTask(`Clone ${vm.name} → ${name}`, copy.id, { states: ['running', 'stopped'] });
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
