import { api, type ImageKind, type Template, type TemplateRequest } from '@nqvm/api';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useNavigate } from 'react-router';
import { ConfirmButton, Modal } from '../components/dialog.tsx';
import { Button, Card, Empty, ErrorState, Field, Loading, PageHeader } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../lib/api.ts';
import { formatMib } from '../lib/format.ts';
import { useCan } from '../lib/session.tsx';
import { splitList } from './vms/wizard-model.ts';

export function TemplatesPage() {
  const [creating, setCreating] = useState(false);
  const can = useCan();
  const [saving, setSaving] = useState(false);
  const templates = useQuery({
    queryKey: ['templates'],
    queryFn: () => call(api.templates.list, { query: { limit: 500 } }),
  });
  return (
    <>
      <PageHeader
        title="Templates"
        actions={
          can('template:write') ? (
            <>
              <Button onClick={() => setSaving(true)}>Save VM as template</Button>
              <Button variant="primary" onClick={() => setCreating(true)}>
                New template
              </Button>
            </>
          ) : null
        }
      />
      {templates.isPending ? (
        <Loading />
      ) : templates.error ? (
        <ErrorState error={templates.error} what="Templates" retry={() => templates.refetch()} />
      ) : templates.data.items.length === 0 ? (
        <Empty>No templates yet. A template stores a VM spec to create VMs from in one step.</Empty>
      ) : (
        <div className="grid gap-4 md:grid-cols-2 xl:grid-cols-3">
          {templates.data.items.map((t) => (
            <TemplateCard key={t.id} t={t} />
          ))}
        </div>
      )}
      <TemplateForm open={creating} onClose={() => setCreating(false)} />
      <SaveVmDialog open={saving} onClose={() => setSaving(false)} />
    </>
  );
}

function TemplateCard({ t }: { t: Template }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [open, setOpen] = useState(false);
  const can = useCan();
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const vm = await call(api.vms.instantiateTemplate, { params: { id: t.id }, body: { name } });
      navigate(`/vms/${vm.id}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <article aria-label={t.name}>
      <Card
        title={t.name}
        actions={
          <>
            {can('vm:write') ? (
              <>
                <Button
                  variant="primary"
                  onClick={() => {
                    setError(null);
                    setOpen(true);
                  }}
                >
                  Create VM
                </Button>
                <Button onClick={() => navigate(`/vms/new?template=${t.id}`)}>Customize</Button>
              </>
            ) : null}
            {can('template:write') ? (
              <ConfirmButton
                label="Delete"
                variant="danger"
                title={`Delete template ${t.name}?`}
                description="VMs created from it keep running."
                onConfirm={async () => {
                  await call(api.templates.delete, { params: { id: t.id } });
                  await qc.invalidateQueries({ queryKey: ['templates'] });
                }}
              />
            ) : null}
          </>
        }
      >
        <p className="mb-2 text-sm text-slate-600">{t.description || 'No description'}</p>
        <p className="text-sm">
          {t.spec.vcpu} vCPU · {formatMib(t.spec.mem_mib)} · {t.spec.vmm ?? 'default VMM'}
        </p>
        {t.spec.tags?.length ? <p className="mt-1 text-xs text-slate-500">Tags: {t.spec.tags.join(', ')}</p> : null}
        <Modal open={open} onOpenChange={setOpen} title={`Create a VM from ${t.name}`}>
          <form onSubmit={submit} className="flex flex-col gap-3">
            <Field
              label="VM name"
              error={
                fieldErrors(error).name ??
                (error && !fieldErrors(error).name ? String((error as Error).message) : undefined)
              }
            >
              {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
            </Field>
            <div className="flex justify-end gap-2">
              <Button onClick={() => setOpen(false)}>Cancel</Button>
              <Button type="submit" variant="primary">
                Create
              </Button>
            </div>
          </form>
        </Modal>
      </Card>
    </article>
  );
}

/** `POST /v1/vms/{id}/template`: stores an existing VM's spec (machine, boot source, network, tags). */
function SaveVmDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [vmId, setVmId] = useState('');
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const vms = useQuery({
    queryKey: ['vms', 'for-template'],
    queryFn: () => call(api.vms.list, { query: { limit: 500 } }),
    enabled: open,
  });
  const fe = fieldErrors(error);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!vmId) return setError(new Error('Choose a VM'));
    setBusy(true);
    setError(null);
    try {
      await call(api.snapshots.saveTemplate, {
        params: { id: vmId },
        body: { name, ...(description ? { description } : {}) },
      });
      await qc.invalidateQueries({ queryKey: ['templates'] });
      setName('');
      setDescription('');
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open={open}
      onOpenChange={(o) => (o ? undefined : onClose())}
      title="Save a VM as template"
      description="The template stores the VM's machine, boot source, network and tags; not its disk contents."
    >
      <form onSubmit={submit} className="flex flex-col gap-3" noValidate>
        <Field label="VM" error={vms.error ? errorMessage(vms.error) : undefined}>
          {(p) => (
            <select {...p} required value={vmId} onChange={(e) => setVmId(e.target.value)}>
              <option value="">{vms.isPending ? 'loading…' : 'choose…'}</option>
              {(vms.data?.items ?? []).map((v) => (
                <option key={v.id} value={v.id}>
                  {v.name}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Template name" error={fe.name}>
          {(p) => <input {...p} required value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Template description" error={fe.description}>
          {(p) => <input {...p} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
        {error && !fe.name && !fe.description ? (
          <p role="alert" className="text-sm text-red-700">
            {errorMessage(error)}
          </p>
        ) : null}
        <div className="flex justify-end gap-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save template'}
          </Button>
        </div>
      </form>
    </Modal>
  );
}

function useImageOptions(kind: ImageKind) {
  return useQuery({
    queryKey: ['images', 'ready', kind],
    queryFn: () => call(api.images.list, { query: { kind, state: 'ready', limit: 500 } }),
  });
}

function TemplateForm({ open, onClose }: { open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const [f, setF] = useState({
    name: '',
    description: '',
    vcpu: '1',
    mem_mib: '256',
    vmm: '',
    kernel: '',
    initrd: '',
    rootfs: '',
    boot_args: '',
    network: '',
    tags: '',
  });
  const [error, setError] = useState<unknown>(null);
  const kernels = useImageOptions('kernel');
  const initrds = useImageOptions('initrd');
  const rootfs = useImageOptions('rootfs');
  const errs = Object.fromEntries(Object.entries(fieldErrors(error)).map(([k, v]) => [k.replace(/^spec\./, ''), v]));
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) => setF((x) => ({ ...x, [k]: e.target.value }));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const tags = splitList(f.tags);
    const body: TemplateRequest = {
      name: f.name,
      ...(f.description ? { description: f.description } : {}),
      spec: {
        vcpu: Number(f.vcpu),
        mem_mib: Number(f.mem_mib),
        kernel_image_id: f.kernel,
        rootfs_image_id: f.rootfs,
        ...(f.vmm === 'qemu' || f.vmm === 'firecracker' ? { vmm: f.vmm } : {}),
        ...(f.initrd ? { initrd_image_id: f.initrd } : {}),
        ...(f.boot_args ? { boot_args: f.boot_args } : {}),
        ...(f.network ? { network: f.network } : {}),
        ...(tags.length ? { tags } : {}),
      },
    };
    try {
      await call(api.templates.create, { body });
      await qc.invalidateQueries({ queryKey: ['templates'] });
      setError(null);
      onClose();
    } catch (err) {
      setError(err);
    }
  };
  const imageSelect = (
    label: string,
    key: 'kernel' | 'initrd' | 'rootfs',
    field: string,
    q: ReturnType<typeof useImageOptions>,
  ) => (
    <Field label={label} error={errs[field]}>
      {(p) => (
        <select {...p} value={f[key]} onChange={set(key)}>
          <option value="">{key === 'initrd' ? 'none' : 'choose…'}</option>
          {(q.data?.items ?? []).map((i) => (
            <option key={i.id} value={i.id}>
              {i.name}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
  return (
    <Modal open={open} onOpenChange={(o) => (o ? undefined : onClose())} title="New template">
      <form onSubmit={submit} className="grid gap-3 sm:grid-cols-2" noValidate>
        <Field label="Name" error={errs.name}>
          {(p) => <input {...p} required value={f.name} onChange={set('name')} />}
        </Field>
        <Field label="Description" error={errs.description}>
          {(p) => <input {...p} value={f.description} onChange={set('description')} />}
        </Field>
        <Field label="vCPUs" error={errs.vcpu}>
          {(p) => <input {...p} type="number" min={1} max={32} value={f.vcpu} onChange={set('vcpu')} />}
        </Field>
        <Field label="Memory (MiB)" error={errs.mem_mib}>
          {(p) => <input {...p} type="number" min={128} value={f.mem_mib} onChange={set('mem_mib')} />}
        </Field>
        <Field label="VMM" error={errs.vmm}>
          {(p) => (
            <select {...p} value={f.vmm} onChange={set('vmm')}>
              <option value="">default</option>
              <option value="qemu">QEMU microvm</option>
              <option value="firecracker">Firecracker</option>
            </select>
          )}
        </Field>
        {imageSelect('Kernel', 'kernel', 'kernel_image_id', kernels)}
        {imageSelect('Initrd', 'initrd', 'initrd_image_id', initrds)}
        {imageSelect('Root filesystem', 'rootfs', 'rootfs_image_id', rootfs)}
        <Field label="Boot arguments" error={errs.boot_args}>
          {(p) => <input {...p} value={f.boot_args} onChange={set('boot_args')} />}
        </Field>
        <Field label="Network" error={errs.network}>
          {(p) => <input {...p} value={f.network} onChange={set('network')} placeholder="default" />}
        </Field>
        <Field label="Tags" error={errs.tags} hint="Comma or space separated">
          {(p) => <input {...p} value={f.tags} onChange={set('tags')} />}
        </Field>
        {error && !Object.keys(errs).length ? (
          <div className="sm:col-span-2">
            <ErrorState error={error} />
          </div>
        ) : null}
        <div className="flex justify-end gap-2 sm:col-span-2">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant="primary">
            Create template
          </Button>
        </div>
      </form>
    </Modal>
  );
}
