import { api, type Vm, type VmConfig } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { RateLimitInput } from '../../components/rate-limit.tsx';
import { ErrorState, Field, Loading } from '../../components/ui.tsx';
import { call } from '../../lib/api.ts';
import { formatRate, inputToLimiter, limiterToInput, rateError } from '../../lib/rate.ts';
import { BalloonCard, RemoveDevice } from './config-balloon.tsx';
import { DeviceForm, useEdit, useSynced } from './edit-support.tsx';

const LOGGER_LEVELS = ['Warning', 'Info', 'Error', 'Debug', 'Trace', 'Off'] as const;
type LoggerLevel = (typeof LOGGER_LEVELS)[number];
const SERIAL_FILE = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}\.log$/;

export function DeviceCards({ vm }: { vm: Vm }) {
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
      {cfg.logger ? <RemoveDevice vm={vm} device="logger" title="Logger" edit={edit} /> : null}
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
      {cfg.entropy ? <RemoveDevice vm={vm} device="entropy" title="Entropy device" edit={edit} /> : null}
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
      {cfg.serial ? <RemoveDevice vm={vm} device="serial" title="Serial output" edit={edit} /> : null}
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
      {cfg.vsock ? <RemoveDevice vm={vm} device="vsock" title="Vsock" edit={edit} /> : null}
    </DeviceForm>
  );
}
