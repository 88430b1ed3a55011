import { api, type Vm } from '@nqvm/api';
import { type FormEvent, useEffect, useState } from 'react';
import { Button, Card, Field } from '../../components/ui.tsx';
import { call } from '../../lib/api.ts';
import { OutcomeNote, useEdit } from './edit-support.tsx';

const TEMPLATES = ['None', 'C3', 'T2', 'T2S', 'T2CL', 'T2A'] as const;
type Template = (typeof TEMPLATES)[number];

interface MachineForm {
  vcpu: string;
  mem_mib: string;
  smt: boolean;
  huge_pages: 'None' | '2M';
  track_dirty_pages: boolean;
}

const fromVm = (vm: Vm): MachineForm => ({
  vcpu: String(vm.vcpu),
  mem_mib: String(vm.mem_mib),
  smt: vm.smt,
  huge_pages: 'None',
  track_dirty_pages: false,
});

/** Only what changed, as the PATCH body wants it (at least one field). */
export function machinePatch(vm: Vm, f: MachineForm) {
  const base = fromVm(vm);
  return {
    ...(f.vcpu !== base.vcpu ? { vcpu: Number(f.vcpu) } : {}),
    ...(f.mem_mib !== base.mem_mib ? { mem_mib: Number(f.mem_mib) } : {}),
    ...(f.smt !== base.smt ? { smt: f.smt } : {}),
    ...(f.huge_pages !== base.huge_pages ? { huge_pages: f.huge_pages } : {}),
    ...(f.track_dirty_pages !== base.track_dirty_pages ? { track_dirty_pages: f.track_dirty_pages } : {}),
  };
}

export function MachineCard({ vm }: { vm: Vm }) {
  const [form, setForm] = useState<MachineForm>(() => fromVm(vm));
  const edit = useEdit(vm.id);
  // biome-ignore lint/correctness/useExhaustiveDependencies: reset the form when the stored values change
  useEffect(() => setForm(fromVm(vm)), [vm.vcpu, vm.mem_mib, vm.smt]);
  const patch = machinePatch(vm, form);
  const local: Record<string, string> = {};
  const vcpu = Number(form.vcpu);
  if (!Number.isInteger(vcpu) || vcpu < 1 || vcpu > 32) local.vcpu = 'between 1 and 32';
  const mem = Number(form.mem_mib);
  if (!Number.isInteger(mem) || mem < 128 || mem > 65536) local.mem_mib = 'between 128 and 65536 MiB';
  const err = (k: string) => local[k] ?? edit.errors[k];
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (Object.keys(local).length || !Object.keys(patch).length) return;
    void edit.save('Machine config', () => call(api.vmDevices.machineConfig, { params: { id: vm.id }, body: patch }));
  };
  return (
    <Card title="Machine">
      <form onSubmit={onSubmit} aria-label="Machine config" noValidate>
        <div className="grid gap-4 md:grid-cols-2">
          <Field label="vCPUs" error={err('vcpu')}>
            {(p) => (
              <input
                {...p}
                type="number"
                min={1}
                max={32}
                value={form.vcpu}
                onChange={(e) => setForm({ ...form, vcpu: e.target.value })}
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
                onChange={(e) => setForm({ ...form, mem_mib: e.target.value })}
              />
            )}
          </Field>
          <Field label="Huge pages" error={err('huge_pages')}>
            {(p) => (
              <select
                {...p}
                value={form.huge_pages}
                onChange={(e) => setForm({ ...form, huge_pages: e.target.value as MachineForm['huge_pages'] })}
              >
                <option value="None">None</option>
                <option value="2M">2M</option>
              </select>
            )}
          </Field>
          <div className="flex flex-col gap-2 pt-6 text-sm">
            <label className="flex items-center gap-2">
              <input
                type="checkbox"
                checked={form.smt}
                onChange={(e) => setForm({ ...form, smt: e.target.checked })}
                aria-invalid={Boolean(err('smt'))}
              />{' '}
              Simultaneous multithreading (SMT)
            </label>
            <label className="flex items-center gap-2">
              <input
                type="checkbox"
                checked={form.track_dirty_pages}
                onChange={(e) => setForm({ ...form, track_dirty_pages: e.target.checked })}
              />{' '}
              Track dirty pages (diff snapshots; Firecracker)
            </label>
            {err('track_dirty_pages') ? (
              <p role="alert" className="text-xs text-red-600" data-field-error>
                {err('track_dirty_pages')}
              </p>
            ) : null}
          </div>
        </div>
        <div className="mt-3 flex gap-2">
          <Button type="submit" variant="primary" disabled={edit.busy || !Object.keys(patch).length}>
            Save machine config
          </Button>
          <Button onClick={() => setForm(fromVm(vm))} disabled={!Object.keys(patch).length}>
            Reset
          </Button>
        </div>
      </form>
      <OutcomeNote outcome={edit.outcome} />
    </Card>
  );
}

export function CpuTemplateCard({ vm }: { vm: Vm }) {
  const [template, setTemplate] = useState<Template>(vm.cpu_template);
  const edit = useEdit(vm.id);
  useEffect(() => setTemplate(vm.cpu_template), [vm.cpu_template]);
  return (
    <Card title="CPU template">
      <form
        aria-label="CPU template"
        onSubmit={(e) => {
          e.preventDefault();
          void edit.save('CPU template', () =>
            call(api.vmDevices.cpuConfig, { params: { id: vm.id }, body: { template } }),
          );
        }}
        className="flex flex-wrap items-end gap-3"
      >
        <Field label="CPU template" error={edit.errors.template ?? edit.errors.cpuid_modifiers}>
          {(p) => (
            <select {...p} value={template} onChange={(e) => setTemplate(e.target.value as Template)}>
              {TEMPLATES.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Button type="submit" variant="primary" disabled={edit.busy || template === vm.cpu_template}>
          Save CPU template
        </Button>
      </form>
      <OutcomeNote outcome={edit.outcome} />
    </Card>
  );
}
