import { api, type Balloon, type Vm, type VmConfig } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { ConfirmButton } from '../../components/dialog.tsx';
import { Button, Card, DefinitionList, Field } from '../../components/ui.tsx';
import { call, errorMessage } from '../../lib/api.ts';
import { formatBytes } from '../../lib/format.ts';
import { CheckboxField, LIVE_STATES, OutcomeNote, useEdit, useSynced } from './edit-support.tsx';

const REMOVE = {
  vsock: api.vmDevices.deleteVsock,
  entropy: api.vmDevices.deleteEntropy,
  serial: api.vmDevices.deleteSerial,
  logger: api.vmDevices.deleteLogger,
  balloon: api.vmDevices.deleteBalloon,
};

/** Takes a set device off the VM after a confirm; the outcome (or requires_stop) shows in the card like a save. */
export function RemoveDevice(props: {
  vm: Vm;
  device: keyof typeof REMOVE;
  title: string;
  edit: ReturnType<typeof useEdit>;
}) {
  return (
    <ConfirmButton
      label={`Remove ${props.title.toLowerCase()}`}
      variant="danger"
      title={`Remove the ${props.title.toLowerCase()}?`}
      description="The VM boots without it from its next start. The VM must be stopped."
      confirmLabel="Remove"
      disabled={props.edit.busy}
      onConfirm={() =>
        props.edit.save(`${props.title} removed`, async () => {
          await call(REMOVE[props.device], { params: { id: props.vm.id } });
          return { applied: 'next_boot' };
        })
      }
    />
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
export function BalloonCard({ vm, cfg }: { vm: Vm; cfg: VmConfig }) {
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
      ) : null}
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
          </Button>{' '}
          {b ? <RemoveDevice vm={vm} device="balloon" title="Memory balloon" edit={edit} /> : null}
        </div>
      </form>
      <OutcomeNote outcome={edit.outcome} />
      {live && b && b.stats_polling_interval_s > 0 ? (
        <BalloonStatsView vm={vm} intervalS={b.stats_polling_interval_s} />
      ) : null}
    </Card>
  );
}

/** The guest's memory as the balloon driver reports it, read again at the VM's statistics interval. */
function BalloonStatsView({ vm, intervalS }: { vm: Vm; intervalS: number }) {
  const q = useQuery({
    queryKey: ['vm', vm.id, 'balloon-stats'],
    queryFn: () => call(api.vmDevices.balloonStats, { params: { id: vm.id } }),
    refetchInterval: Math.max(2, intervalS) * 1000,
    retry: false,
  });
  if (q.error) return <p className="mt-3 text-sm text-slate-600">Statistics not available: {errorMessage(q.error)}</p>;
  const st = q.data;
  if (!st) return null;
  const bytes = (n: number | undefined) => (n === undefined ? 'not reported' : formatBytes(n));
  const count = (n: number | undefined) => (n === undefined ? 'not reported' : n.toLocaleString());
  return (
    <section aria-label="Balloon statistics" className="mt-3">
      <h3 className="mb-1 text-sm font-semibold">Balloon statistics (every {intervalS} s)</h3>
      <DefinitionList
        items={[
          ['Balloon size', `${st.actual_mib} MiB of ${st.target_mib} MiB asked`],
          ['Guest memory total', bytes(st.total_memory)],
          ['Free / available', `${bytes(st.free_memory)} / ${bytes(st.available_memory)}`],
          ['Disk caches', bytes(st.disk_caches)],
          ['Swapped in / out', `${bytes(st.swap_in)} / ${bytes(st.swap_out)}`],
          ['Page faults (major / minor)', `${count(st.major_faults)} / ${count(st.minor_faults)}`],
        ]}
      />
    </section>
  );
}
