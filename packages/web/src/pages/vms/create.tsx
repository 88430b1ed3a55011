import { api, type Image, type ImageKind, type Vm } from '@nqvm/api';
import { useMutation, useQuery } from '@tanstack/react-query';
import { type FormEvent, type ReactNode, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { Button, Card, ErrorState, Field, PageHeader } from '../../components/ui.tsx';
import { call, errorMessage, fieldErrors, listAllHosts } from '../../lib/api.ts';
import { formatBytes, formatMib } from '../../lib/format.ts';
import { useCan } from '../../lib/session.tsx';
import { diskShortfall, freeOnHosts, machineShortfall } from './wizard-capacity.ts';
import { deviceSteps, stepErrors } from './wizard-devices.ts';
import {
  EMPTY_FORM,
  FIELD_STEP,
  hasDeviceSteps,
  STEPS,
  type Step,
  topField,
  toRequest,
  validate,
  type WizardForm,
} from './wizard-model.ts';
import { AdvancedPanel, Grid, NetworkPanel } from './wizard-panels.tsx';
import { WizardReview } from './wizard-review.tsx';

/** A device request refused after the VM was created, with its errors mapped onto wizard fields. */
class StepError extends Error {
  constructor(
    readonly fields: Record<string, string>,
    override readonly cause: unknown,
  ) {
    super(Object.values(fields).join('; '));
  }
}

function useImages(kind: ImageKind) {
  return useQuery({
    queryKey: ['images', 'ready', kind],
    queryFn: () => call(api.images.list, { query: { kind, state: 'ready', limit: 500 } }),
  });
}

export function VmCreatePage() {
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [form, setForm] = useState<WizardForm>(EMPTY_FORM);
  const [step, setStep] = useState<Step>('Basics');
  const [templateId, setTemplateId] = useState(params.get('template') ?? '');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const templates = useQuery({
    queryKey: ['templates'],
    queryFn: () => call(api.templates.list, { query: { limit: 500 } }),
  });
  // Capacity per step needs the hosts (host:read); without it the wizard checks the schema alone.
  const can = useCan();
  const hosts = useQuery({ queryKey: ['hosts'], queryFn: listAllHosts, enabled: can('host:read') });
  const stats = useQuery({ queryKey: ['stats'], queryFn: () => call(api.stats.get) });
  const kernels = useImages('kernel');
  const initrds = useImages('initrd');
  const rootfs = useImages('rootfs');

  const upd = <K extends keyof WizardForm>(k: K, v: WizardForm[K]) => setForm((f) => ({ ...f, [k]: v }));
  const [created, setCreated] = useState<Vm | null>(null);
  const showErrors = (fe: Record<string, string>) => {
    setErrors(fe);
    const first = Object.keys(fe)
      .map((k) => FIELD_STEP[k])
      .find(Boolean);
    if (first) setStep(first);
  };
  const create = useMutation({
    mutationFn: async () => {
      let vm = created;
      if (!vm) {
        const req = toRequest(form);
        const { name, ...overrides } = req;
        vm = templateId
          ? await call(api.vms.instantiateTemplate, { params: { id: templateId }, body: { name, overrides } })
          : await call(api.vms.create, { body: req });
      }
      // Devices the create body does not take go in now, while the VM is stopped; then it boots if asked.
      for (const s of deviceSteps(form, { network: !form.no_network })) {
        try {
          await s.apply(vm.id);
        } catch (err) {
          setCreated(vm);
          throw new StepError(stepErrors(s, err), err);
        }
      }
      if (form.start && hasDeviceSteps(form)) await call(api.vms.start, { params: { id: vm.id } });
      return vm;
    },
    onSuccess: (vm) => navigate(`/vms/${vm.id}`),
    onError: (err) => {
      if (err instanceof StepError) return showErrors(err.fields);
      showErrors(
        Object.fromEntries(
          Object.entries(fieldErrors(err)).map(([k, v]) => [topField(k.replace(/^overrides\./, '')), v]),
        ),
      );
    },
  });
  const applyTemplate = (id: string) => {
    setTemplateId(id);
    const t = templates.data?.items.find((x) => x.id === id);
    if (!t) return;
    setForm((f) => ({
      ...f,
      vcpu: String(t.spec.vcpu),
      mem_mib: String(t.spec.mem_mib),
      vmm: t.spec.vmm ?? '',
      kernel_image_id: t.spec.kernel_image_id,
      initrd_image_id: t.spec.initrd_image_id ?? '',
      rootfs_image_id: t.spec.rootfs_image_id,
      boot_args: t.spec.boot_args ?? '',
      network: t.spec.network ?? f.network,
      tags: (t.spec.tags ?? []).join(', '),
    }));
  };

  const idx = STEPS.indexOf(step);
  const go = (to: number) => {
    const next = STEPS[to];
    if (next) setStep(next);
  };
  const allImages = [...(kernels.data?.items ?? []), ...(initrds.data?.items ?? []), ...(rootfs.data?.items ?? [])];
  /** Every check that can run in the browser: the schema's rules, then capacity against the hosts' free resources. */
  const check = () => {
    const cap = stats.data?.capacity;
    const free = cap
      ? freeOnHosts(hosts.data?.items ?? [], { cpu: cap.cpu_overcommit, mem: cap.mem_overcommit }, form.host_id)
      : [];
    const rootfsSize = allImages.find((i) => i.id === form.rootfs_image_id)?.size_bytes;
    return {
      ...machineShortfall(free, Number(form.vcpu), Number(form.mem_mib)),
      ...diskShortfall(free, rootfsSize),
      ...validate(form),
    };
  };
  const capacityLine = () => {
    const cap = stats.data?.capacity;
    if (!can('host:read')) return 'Free capacity: the manager checks it when the VM is created.';
    if (!cap) return 'Free capacity: not known yet.';
    const free = freeOnHosts(
      hosts.data?.items ?? [],
      { cpu: cap.cpu_overcommit, mem: cap.mem_overcommit },
      form.host_id,
    );
    if (!free.length) return 'No healthy host has reported its capacity yet.';
    const cpu = Math.max(...free.map((f) => f.vcpu));
    const mem = Math.max(...free.map((f) => f.memMib));
    return `Most free on one host: ${cpu} vCPU (×${cap.cpu_overcommit} overcommit), ${formatMib(mem)} memory.`;
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (step !== 'Review') {
      // Each step is checked as it is left: its own fields only, so a later step's blanks do not block.
      const here = Object.fromEntries(Object.entries(check()).filter(([k]) => FIELD_STEP[k] === step));
      setErrors((prev) => ({
        ...Object.fromEntries(Object.entries(prev).filter(([k]) => FIELD_STEP[k] !== step)),
        ...here,
      }));
      if (Object.keys(here).length) return;
      return go(idx + 1);
    }
    const local = check();
    showErrors(local);
    if (Object.keys(local).length) return;
    create.mutate();
  };
  const err = (k: string) => errors[k];
  const imageSelect = (
    label: string,
    key: 'kernel_image_id' | 'initrd_image_id' | 'rootfs_image_id',
    q: ReturnType<typeof useImages>,
    optional = false,
  ) => (
    <Field
      label={label}
      error={err(key)}
      hint={q.error ? `could not load images: ${errorMessage(q.error)}` : undefined}
    >
      {(p) => (
        <select {...p} value={form[key]} onChange={(e) => upd(key, e.target.value)}>
          <option value="">{optional ? 'none' : q.isPending ? 'loading…' : 'choose…'}</option>
          {(q.data?.items ?? []).map((i: Image) => (
            <option key={i.id} value={i.id}>
              {i.name} ({formatBytes(i.size_bytes)})
            </option>
          ))}
        </select>
      )}
    </Field>
  );

  const panels: Record<Step, ReactNode> = {
    Basics: (
      <Grid>
        <Field label="Name" error={err('name')}>
          {(p) => <input {...p} required value={form.name} onChange={(e) => upd('name', e.target.value)} />}
        </Field>
        <Field label="Description" error={err('description')}>
          {(p) => <input {...p} value={form.description} onChange={(e) => upd('description', e.target.value)} />}
        </Field>
        <Field label="Owner" error={err('owner')}>
          {(p) => <input {...p} value={form.owner} onChange={(e) => upd('owner', e.target.value)} />}
        </Field>
        <Field label="Environment" error={err('environment')}>
          {(p) => (
            <input
              {...p}
              value={form.environment}
              onChange={(e) => upd('environment', e.target.value)}
              placeholder="dev, staging, prod"
            />
          )}
        </Field>
        <Field label="Tags" error={err('tags')} hint="Comma or space separated">
          {(p) => <input {...p} value={form.tags} onChange={(e) => upd('tags', e.target.value)} />}
        </Field>
      </Grid>
    ),
    Credentials: (
      <Grid>
        <Field label="Username" error={err('username')}>
          {(p) => (
            <input {...p} value={form.username} onChange={(e) => upd('username', e.target.value)} autoComplete="off" />
          )}
        </Field>
        <Field label="Password" error={err('password')} hint="Set in the guest's /etc/shadow before boot">
          {(p) => (
            <input
              {...p}
              type="password"
              value={form.password}
              onChange={(e) => upd('password', e.target.value)}
              autoComplete="new-password"
            />
          )}
        </Field>
        <Field label="SSH authorized keys" error={err('ssh_authorized_keys')} hint="One public key per line">
          {(p) => <textarea {...p} rows={3} value={form.ssh_keys} onChange={(e) => upd('ssh_keys', e.target.value)} />}
        </Field>
      </Grid>
    ),
    Machine: (
      <Grid>
        <Field label="vCPUs" error={err('vcpu')}>
          {(p) => (
            <input
              {...p}
              type="number"
              min={1}
              max={32}
              value={form.vcpu}
              onChange={(e) => upd('vcpu', e.target.value)}
            />
          )}
        </Field>
        <Field label="Memory (MiB)" error={err('mem_mib')}>
          {(p) => (
            <input
              {...p}
              type="number"
              min={128}
              max={65536}
              step={64}
              value={form.mem_mib}
              onChange={(e) => upd('mem_mib', e.target.value)}
            />
          )}
        </Field>
        <Field label="VMM" error={err('vmm')} hint="Default: what the chosen host runs">
          {(p) => (
            <select {...p} value={form.vmm} onChange={(e) => upd('vmm', e.target.value as WizardForm['vmm'])}>
              <option value="">default</option>
              <option value="qemu">QEMU microvm</option>
              <option value="firecracker">Firecracker</option>
            </select>
          )}
        </Field>
        <Field label="CPU template" error={err('cpu_template')}>
          {(p) => (
            <select
              {...p}
              value={form.cpu_template}
              onChange={(e) => upd('cpu_template', e.target.value as WizardForm['cpu_template'])}
            >
              <option value="">default</option>
              {['None', 'C3', 'T2', 'T2S', 'T2CL', 'T2A'].map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          )}
        </Field>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={form.smt} onChange={(e) => upd('smt', e.target.checked)} /> Simultaneous
          multithreading (SMT)
        </label>
        <p className="text-sm text-slate-600" data-testid="machine-capacity">
          {capacityLine()}
        </p>
      </Grid>
    ),
    'Boot source': (
      <Grid>
        {imageSelect('Kernel', 'kernel_image_id', kernels)}
        {imageSelect('Initrd', 'initrd_image_id', initrds, true)}
        {imageSelect('Root filesystem', 'rootfs_image_id', rootfs)}
        <Field label="Boot arguments" error={err('boot_args')} hint="Empty: the VMM's defaults">
          {(p) => (
            <input
              {...p}
              value={form.boot_args}
              onChange={(e) => upd('boot_args', e.target.value)}
              placeholder="console=ttyS0 reboot=k panic=1"
            />
          )}
        </Field>
        <p className="text-sm text-slate-600">
          Images come from the{' '}
          <Link to="/registry" className="text-blue-700 underline">
            registry
          </Link>
          .
        </p>
      </Grid>
    ),
    Network: <NetworkPanel form={form} upd={upd} err={err} />,
    Advanced: <AdvancedPanel form={form} upd={upd} err={err} hosts={hosts.data?.items ?? []} />,
    Review: (
      <WizardReview
        form={form}
        errors={errors}
        fieldStep={FIELD_STEP}
        images={allImages}
        hosts={hosts.data?.items ?? []}
        templateName={templates.data?.items.find((t) => t.id === templateId)?.name}
        goTo={setStep}
      />
    ),
  };

  return (
    <>
      <PageHeader title="Create a VM" />
      <Card className="mb-4">
        <Field
          label="Start from template"
          hint={
            templates.error ? errorMessage(templates.error) : 'Optional: prefill from a template and create through it'
          }
        >
          {(p) => (
            <select {...p} value={templateId} onChange={(e) => applyTemplate(e.target.value)}>
              <option value="">none (from scratch)</option>
              {(templates.data?.items ?? []).map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name}
                </option>
              ))}
            </select>
          )}
        </Field>
      </Card>
      <form onSubmit={onSubmit} noValidate aria-label="Create VM">
        <nav aria-label="Wizard steps" className="mb-4 overflow-x-auto">
          <ol className="flex gap-1 text-sm">
            {STEPS.map((s, i) => {
              const bad = Object.keys(errors).some((k) => FIELD_STEP[k] === s);
              return (
                <li key={s}>
                  <button
                    type="button"
                    onClick={() => setStep(s)}
                    aria-current={s === step ? 'step' : undefined}
                    className={`rounded-full px-3 py-1 whitespace-nowrap ${s === step ? 'bg-blue-600 text-white' : bad ? 'bg-red-100 text-red-800' : 'bg-slate-200 text-slate-700'}`}
                  >
                    {i + 1}. {s}
                  </button>
                </li>
              );
            })}
          </ol>
        </nav>
        {created ? (
          <p role="status" className="mb-3 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900">
            {created.name} was created (stopped), but a device setting was refused. Fix the field shown and press Apply
            settings, or{' '}
            <Link to={`/vms/${created.id}`} className="underline">
              open the VM
            </Link>
            .
          </p>
        ) : null}
        <Card title={step}>{panels[step]}</Card>
        {create.error && !Object.keys(errors).length ? (
          <div className="mt-3">
            <ErrorState error={create.error} />
          </div>
        ) : null}
        <div className="mt-4 flex gap-2">
          <Button disabled={idx === 0} onClick={() => go(idx - 1)}>
            Back
          </Button>
          <Button type="submit" variant="primary" disabled={create.isPending}>
            {step === 'Review' ? (create.isPending ? 'Creating…' : created ? 'Apply settings' : 'Create VM') : 'Next'}
          </Button>
        </div>
      </form>
    </>
  );
}
