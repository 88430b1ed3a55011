import { api, type Balloon, type Vm, type VmConfig } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { type FormEvent, useEffect, useState } from 'react';
import { RateLimitInput } from '../../components/rate-limit.tsx';
import { Button, Card, DefinitionList, ErrorState, Field, Loading } from '../../components/ui.tsx';
import { call } from '../../lib/api.ts';
import { formatRate, inputToLimiter, limiterToInput, rateError } from '../../lib/rate.ts';
import {
  CheckboxField,
  DeviceForm,
  LIVE_STATES,
  OutcomeNote,
  RestartWarning,
  useEdit,
  useSynced,
} from './edit-support.tsx';

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

export function ConfigTab({ vm }: { vm: Vm }) {
  return (
    <div className="flex flex-col gap-4">
      <MachineCard vm={vm} />
      <CpuTemplateCard vm={vm} />
      <DeviceCards vm={vm} />
      <Card title="Boot source">
        <DefinitionList
          items={[
            ['VMM', vm.vmm],
            ['Kernel image', <code key="k">{vm.kernel_image_id}</code>],
            ['Initrd image', vm.initrd_image_id ? <code key="i">{vm.initrd_image_id}</code> : 'none'],
            ['Root filesystem image', <code key="r">{vm.rootfs_image_id}</code>],
            ['Boot arguments', <code key="b">{vm.boot_args || '(default)'}</code>],
          ]}
        />
      </Card>
    </div>
  );
}

function MachineCard({ vm }: { vm: Vm }) {
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
      <RestartWarning state={vm.state} />
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

function CpuTemplateCard({ vm }: { vm: Vm }) {
  const [template, setTemplate] = useState<Template>(vm.cpu_template);
  const edit = useEdit(vm.id);
  useEffect(() => setTemplate(vm.cpu_template), [vm.cpu_template]);
  return (
    <Card title="CPU template">
      <RestartWarning state={vm.state} />
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

const LOGGER_LEVELS = ['Warning', 'Info', 'Error', 'Debug', 'Trace', 'Off'] as const;
type LoggerLevel = (typeof LOGGER_LEVELS)[number];
const SERIAL_FILE = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}\.log$/;

function DeviceCards({ vm }: { vm: Vm }) {
  const cfg = useQuery({
    queryKey: ['vm', vm.id, 'config'],
    queryFn: () => call(api.vmDevices.getConfig, { params: { id: vm.id } }),
  });
  if (cfg.isPending) return <Loading label="Loading device configuration…" />;
  if (cfg.isError) return <ErrorState error={cfg.error} what="Device configuration" retry={() => cfg.refetch()} />;
  return (
    <>
      <LoggerCard vm={vm} cfg={cfg.data} />
      <EntropyCard vm={vm} cfg={cfg.data} />
      <BalloonCard vm={vm} cfg={cfg.data} />
      <SerialCard vm={vm} cfg={cfg.data} />
      <VsockCard vm={vm} cfg={cfg.data} />
    </>
  );
}

function LoggerCard({ vm, cfg }: { vm: Vm; cfg: VmConfig }) {
  const [level, setLevel] = useSynced<LoggerLevel>(cfg.logger?.level ?? 'Warning');
  const edit = useEdit(vm.id);
  return (
    <DeviceForm
      vm={vm}
      title="Logger"
      current={cfg.logger ? `level ${cfg.logger.level}` : 'not set (QEMU logs warnings and errors)'}
      edit={edit}
      canSave={level !== cfg.logger?.level}
      onSave={() =>
        void edit.save('Logger', () => call(api.vmDevices.logger, { params: { id: vm.id }, body: { level } }))
      }
    >
      <Field label="Logger level" error={edit.errors.level} hint="QEMU hosts log at Warning or Info">
        {(p) => (
          <select {...p} value={level} onChange={(e) => setLevel(e.target.value as LoggerLevel)}>
            {LOGGER_LEVELS.map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        )}
      </Field>
    </DeviceForm>
  );
}

function EntropyCard({ vm, cfg }: { vm: Vm; cfg: VmConfig }) {
  const [rate, setRate] = useSynced(limiterToInput(cfg.entropy?.rate_limiter));
  const edit = useEdit(vm.id);
  const limiter = inputToLimiter(rate);
  const changed = !cfg.entropy || JSON.stringify(limiter) !== JSON.stringify(cfg.entropy.rate_limiter ?? null);
  return (
    <DeviceForm
      vm={vm}
      title="Entropy device"
      current={cfg.entropy ? `virtio-rng, ${formatRate(cfg.entropy.rate_limiter)}` : 'none'}
      edit={edit}
      canSave={changed && !rateError(rate)}
      onSave={() =>
        void edit.save('Entropy device', () =>
          call(api.vmDevices.entropy, { params: { id: vm.id }, body: limiter ? { rate_limiter: limiter } : {} }),
        )
      }
    >
      <RateLimitInput label="Entropy rate limit" value={rate} onChange={setRate} error={edit.errors.rate_limiter} />
    </DeviceForm>
  );
}

function SerialCard({ vm, cfg }: { vm: Vm; cfg: VmConfig }) {
  const [file, setFile] = useSynced(cfg.serial?.serial_out_path ?? '');
  const edit = useEdit(vm.id);
  const local = file && !SERIAL_FILE.test(file) ? "a file name like serial.log (letters, digits, _ -, '.log')" : '';
  return (
    <DeviceForm
      vm={vm}
      title="Serial output"
      current={cfg.serial ? `also written to ${cfg.serial.serial_out_path} in the VM directory` : 'console only'}
      edit={edit}
      canSave={Boolean(file) && !local && file !== cfg.serial?.serial_out_path}
      onSave={() =>
        void edit.save('Serial output', () =>
          call(api.vmDevices.serial, { params: { id: vm.id }, body: { serial_out_path: file } }),
        )
      }
    >
      <Field label="Serial output file" error={local || edit.errors.serial_out_path}>
        {(p) => <input {...p} value={file} placeholder="serial.log" onChange={(e) => setFile(e.target.value)} />}
      </Field>
    </DeviceForm>
  );
}

function VsockCard({ vm, cfg }: { vm: Vm; cfg: VmConfig }) {
  const [cid, setCid] = useSynced(cfg.vsock ? String(cfg.vsock.guest_cid) : '');
  const edit = useEdit(vm.id);
  const n = Number(cid);
  const local = cid && (!Number.isInteger(n) || n < 3 || n > 0xfffffffe) ? 'an integer from 3 to 4294967294' : '';
  return (
    <DeviceForm
      vm={vm}
      title="Vsock"
      current={cfg.vsock ? `guest CID ${cfg.vsock.guest_cid}` : 'none'}
      edit={edit}
      canSave={Boolean(cid) && !local && n !== cfg.vsock?.guest_cid}
      onSave={() =>
        void edit.save('Vsock', () => call(api.vmDevices.vsock, { params: { id: vm.id }, body: { guest_cid: n } }))
      }
    >
      <Field label="Vsock guest CID" error={local || edit.errors.guest_cid || edit.errors.uds_path}>
        {(p) => <input {...p} type="number" min={3} value={cid} onChange={(e) => setCid(e.target.value)} />}
      </Field>
    </DeviceForm>
  );
}

interface BalloonForm {
  amount_mib: string;
  deflate_on_oom: boolean;
  stats_polling_interval_s: string;
}
const balloonForm = (b: Balloon | null): BalloonForm => ({
  amount_mib: String(b?.amount_mib ?? 0),
  deflate_on_oom: b?.deflate_on_oom ?? true,
  stats_polling_interval_s: String(b?.stats_polling_interval_s ?? 0),
});

/** Stopped: PUT the whole balloon. Running with a balloon: PATCH the size (and stats interval) live. */
function BalloonCard({ vm, cfg }: { vm: Vm; cfg: VmConfig }) {
  const [form, setForm] = useSynced(balloonForm(cfg.balloon));
  const edit = useEdit(vm.id);
  const live = LIVE_STATES.includes(vm.state) && cfg.balloon !== null;
  const amount = Number(form.amount_mib);
  const interval = Number(form.stats_polling_interval_s);
  const local: Record<string, string> = {};
  if (!Number.isInteger(amount) || amount < 0 || amount >= cfg.machine.mem_mib)
    local.amount_mib = `0 to ${cfg.machine.mem_mib - 1} MiB (below the VM memory)`;
  if (!Number.isInteger(interval) || interval < 0 || interval > 3600) local.stats_polling_interval_s = '0 to 3600 s';
  const err = (k: string) => local[k] ?? edit.errors[k];
  const b = cfg.balloon;
  const changed =
    !b ||
    amount !== b.amount_mib ||
    interval !== b.stats_polling_interval_s ||
    (!live && form.deflate_on_oom !== b.deflate_on_oom);
  const save = () =>
    edit.save('Balloon', async () => {
      const params = { id: vm.id };
      if (!live || !b)
        return call(api.vmDevices.putBalloon, {
          params,
          body: { amount_mib: amount, deflate_on_oom: form.deflate_on_oom, stats_polling_interval_s: interval },
        });
      let res: { applied: 'live' | 'next_boot' } | undefined;
      if (amount !== b.amount_mib)
        res = await call(api.vmDevices.patchBalloon, { params, body: { amount_mib: amount } });
      if (interval !== b.stats_polling_interval_s)
        res = await call(api.vmDevices.patchBalloonStats, { params, body: { stats_polling_interval_s: interval } });
      return res;
    });
  return (
    <Card title="Memory balloon">
      {live ? (
        <p className="mb-3 text-sm text-slate-600" data-live-balloon>
          Size and statistics interval change live on the running VM; deflate on OOM needs a restart.
        </p>
      ) : (
        <RestartWarning state={vm.state} />
      )}
      <p className="mb-2 text-sm text-slate-600" data-current="Memory balloon">
        Stored:{' '}
        {b
          ? `${b.amount_mib} MiB, deflate on OOM ${b.deflate_on_oom ? 'on' : 'off'}, stats every ${b.stats_polling_interval_s} s`
          : 'none'}
      </p>
      <form
        aria-label="Memory balloon"
        noValidate
        className="grid gap-4 md:grid-cols-3"
        onSubmit={(e) => {
          e.preventDefault();
          if (changed && !Object.keys(local).length) void save();
        }}
      >
        <Field label="Balloon size (MiB)" error={err('amount_mib')}>
          {(p) => (
            <input
              {...p}
              type="number"
              min={0}
              value={form.amount_mib}
              onChange={(e) => setForm({ ...form, amount_mib: e.target.value })}
            />
          )}
        </Field>
        <Field label="Statistics interval (s, 0 = off)" error={err('stats_polling_interval_s')}>
          {(p) => (
            <input
              {...p}
              type="number"
              min={0}
              max={3600}
              value={form.stats_polling_interval_s}
              onChange={(e) => setForm({ ...form, stats_polling_interval_s: e.target.value })}
            />
          )}
        </Field>
        <CheckboxField
          label="Deflate on OOM"
          checked={form.deflate_on_oom}
          disabled={live}
          error={err('deflate_on_oom')}
          onChange={(v) => setForm({ ...form, deflate_on_oom: v })}
        />
        <div>
          <Button type="submit" variant="primary" disabled={edit.busy || !changed}>
            {live ? 'Apply balloon now' : 'Save balloon'}
          </Button>
        </div>
      </form>
      <OutcomeNote outcome={edit.outcome} />
    </Card>
  );
}
