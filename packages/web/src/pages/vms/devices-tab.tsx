import { api, type Drive, type Nic, type Vm } from '@nqvm/api';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmButton } from '../../components/dialog.tsx';
import { RateLimitInput } from '../../components/rate-limit.tsx';
import { Button, Card, Field } from '../../components/ui.tsx';
import { call } from '../../lib/api.ts';
import { formatMib } from '../../lib/format.ts';
import { formatRate, inputToLimiter, limiterToInput, type RateInput, rateError, UNLIMITED } from '../../lib/rate.ts';
import { type DeviceColumn, DeviceList } from './device-table.tsx';
import { OutcomeNote, useEdit } from './edit-support.tsx';
import { RestartBanner } from './restart-banner.tsx';

const driveColumns: DeviceColumn<Drive>[] = [
  { header: 'Drive', className: 'font-medium', cell: (d) => d.drive_id },
  { header: 'Guest device', className: 'font-mono text-xs', cell: (d) => d.guest_device },
  {
    header: 'Source',
    cell: (d) => (d.image_id ? `image ${d.image_id.slice(0, 8)}` : `blank ${formatMib(d.size_mib ?? 0)}`),
  },
  { header: 'Mode', cell: (d) => `${d.is_read_only ? 'read-only' : 'read-write'}, ${d.cache_type}, ${d.io_engine}` },
  { header: 'Rate limit', cell: (d) => formatRate(d.rate_limiter) },
];

const nicColumns: DeviceColumn<Nic>[] = [
  { header: 'Interface', className: 'font-medium', cell: (n) => n.iface_id },
  { header: 'Network', cell: (n) => n.network },
  { header: 'MAC', className: 'font-mono text-xs', cell: (n) => n.mac },
  { header: 'IP', className: 'font-mono text-xs', cell: (n) => n.ip },
  { header: 'RX limit', cell: (n) => formatRate(n.rx_rate_limiter) },
  { header: 'TX limit', cell: (n) => formatRate(n.tx_rate_limiter) },
];

export function StorageTab({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const key = ['vm', vm.id, 'drives'];
  const q = useQuery({ queryKey: key, queryFn: () => call(api.vmDevices.listDrives, { params: { id: vm.id } }) });
  const [editing, setEditing] = useState<string | null>(null);
  const refresh = () => qc.invalidateQueries({ queryKey: key });
  return (
    <div className="flex flex-col gap-4">
      <RestartBanner vm={vm} />
      <Card title="Drives">
        <p className="mb-3 text-sm text-slate-600">
          The root disk (/dev/vda) and the guest tools drive (/dev/vdb) are managed by nqvm; extra drives follow.
        </p>
        <DeviceList
          query={q}
          what="Drive management"
          empty="No extra drives"
          columns={driveColumns}
          rowKey={(d) => d.drive_id}
          rowData={(d) => ({ 'data-drive-id': d.drive_id })}
          actions={(d) => (
            <>
              <Button onClick={() => setEditing(editing === d.drive_id ? null : d.drive_id)}>
                Edit limit<span className="sr-only"> of {d.drive_id}</span>
              </Button>
              <ConfirmButton
                label={`Remove ${d.drive_id}`}
                variant="danger"
                title={`Remove drive ${d.drive_id}?`}
                description="The drive is detached and its disk file deleted. The VM must be stopped."
                confirmLabel="Remove"
                onConfirm={() =>
                  call(api.vmDevices.deleteDrive, { params: { id: vm.id, drive_id: d.drive_id } }).then(refresh)
                }
              />
            </>
          )}
        />
        {editing && q.data ? (
          <DriveLimit
            key={editing}
            vm={vm}
            drive={q.data.items.find((d) => d.drive_id === editing)}
            onDone={() => void refresh()}
          />
        ) : null}
      </Card>
      <AddDrive vm={vm} onDone={() => void refresh()} />
    </div>
  );
}

function DriveLimit({ vm, drive, onDone }: { vm: Vm; drive: Drive | undefined; onDone: () => void }) {
  const [limit, setLimit] = useState<RateInput>(limiterToInput(drive?.rate_limiter));
  const edit = useEdit(vm.id);
  if (!drive) return null;
  return (
    <form
      aria-label={`Rate limit of ${drive.drive_id}`}
      className="mt-4 rounded-md border border-slate-200 p-3"
      onSubmit={async (e) => {
        e.preventDefault();
        if (rateError(limit)) return;
        const ok = await edit.save(`Rate limit of ${drive.drive_id}`, () =>
          call(api.vmDevices.updateDrive, {
            params: { id: vm.id, drive_id: drive.drive_id },
            body: { rate_limiter: inputToLimiter(limit) },
          }),
        );
        if (ok) onDone();
      }}
    >
      <RateLimitInput
        label={`Bandwidth limit of ${drive.drive_id}`}
        value={limit}
        onChange={setLimit}
        error={edit.errors.rate_limiter}
      />
      <Button type="submit" variant="primary" className="mt-2" disabled={edit.busy}>
        Save limit
      </Button>
      <OutcomeNote outcome={edit.outcome} />
    </form>
  );
}

function AddDrive({ vm, onDone }: { vm: Vm; onDone: () => void }) {
  const [driveId, setDriveId] = useState('data');
  const [source, setSource] = useState<'blank' | 'image'>('blank');
  const [size, setSize] = useState('1024');
  const [imageId, setImageId] = useState('');
  const [readOnly, setReadOnly] = useState(false);
  const [limit, setLimit] = useState<RateInput>(UNLIMITED);
  const edit = useEdit(vm.id);
  const images = useQuery({
    queryKey: ['images', 'ready', 'rootfs'],
    queryFn: () => call(api.images.list, { query: { kind: 'rootfs', state: 'ready', limit: 500 } }),
    enabled: source === 'image',
  });
  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    if (rateError(limit)) return;
    const rl = inputToLimiter(limit);
    const ok = await edit.save(`Drive ${driveId}`, () =>
      call(api.vmDevices.createDrive, {
        params: { id: vm.id },
        body: {
          drive_id: driveId,
          ...(source === 'blank' ? { size_mib: Number(size) } : { image_id: imageId }),
          is_read_only: readOnly,
          ...(rl ? { rate_limiter: rl } : {}),
        },
      }),
    );
    if (ok) onDone();
  };
  return (
    <Card title="Add a drive">
      <form aria-label="Add a drive" onSubmit={onSubmit} noValidate className="grid gap-4 md:grid-cols-2">
        <Field
          label="Drive id"
          error={edit.errors.drive_id}
          hint="Lower-case letters, digits and _ (rootfs and tools are reserved)"
        >
          {(p) => <input {...p} value={driveId} onChange={(e) => setDriveId(e.target.value)} />}
        </Field>
        <Field label="Source">
          {(p) => (
            <select {...p} value={source} onChange={(e) => setSource(e.target.value as 'blank' | 'image')}>
              <option value="blank">new blank ext4 disk</option>
              <option value="image">copy of a registry image</option>
            </select>
          )}
        </Field>
        {source === 'blank' ? (
          <Field label="Size (MiB)" error={edit.errors.size_mib}>
            {(p) => <input {...p} type="number" min={1} value={size} onChange={(e) => setSize(e.target.value)} />}
          </Field>
        ) : (
          <Field label="Image" error={edit.errors.image_id}>
            {(p) => (
              <select {...p} value={imageId} onChange={(e) => setImageId(e.target.value)}>
                <option value="">{images.isPending ? 'loading…' : 'choose…'}</option>
                {(images.data?.items ?? []).map((i) => (
                  <option key={i.id} value={i.id}>
                    {i.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}
        <label className="flex items-center gap-2 pt-6 text-sm">
          <input type="checkbox" checked={readOnly} onChange={(e) => setReadOnly(e.target.checked)} /> Read-only
        </label>
        <RateLimitInput label="Drive rate limit" value={limit} onChange={setLimit} error={edit.errors.rate_limiter} />
        <div className="md:col-span-2">
          <Button type="submit" variant="primary" disabled={edit.busy}>
            Add drive
          </Button>
        </div>
      </form>
      <OutcomeNote outcome={edit.outcome} />
    </Card>
  );
}

export function NetworkTab({ vm }: { vm: Vm }) {
  const qc = useQueryClient();
  const key = ['vm', vm.id, 'nics'];
  const q = useQuery({ queryKey: key, queryFn: () => call(api.vmDevices.listNics, { params: { id: vm.id } }) });
  const [editing, setEditing] = useState<string | null>(null);
  const refresh = () => qc.invalidateQueries({ queryKey: key });
  return (
    <div className="flex flex-col gap-4">
      <RestartBanner vm={vm} />
      <Card title="Network interfaces">
        <DeviceList
          query={q}
          what="NIC management"
          empty="No network interfaces"
          columns={nicColumns}
          rowKey={(n) => n.iface_id}
          rowData={(n) => ({ 'data-nic-id': n.iface_id })}
          actions={(n) => (
            <>
              <Button onClick={() => setEditing(editing === n.iface_id ? null : n.iface_id)}>
                Edit limits<span className="sr-only"> of {n.iface_id}</span>
              </Button>
              {n.iface_id !== 'eth0' ? (
                <ConfirmButton
                  label={`Remove ${n.iface_id}`}
                  variant="danger"
                  title={`Remove ${n.iface_id}?`}
                  description="The interface is removed and its address freed. The VM must be stopped."
                  confirmLabel="Remove"
                  onConfirm={() =>
                    call(api.vmDevices.deleteNic, { params: { id: vm.id, nic_id: n.iface_id } }).then(refresh)
                  }
                />
              ) : null}
            </>
          )}
        />
        {editing && q.data ? (
          <NicLimits
            key={editing}
            vm={vm}
            nic={q.data.items.find((n) => n.iface_id === editing)}
            onDone={() => void refresh()}
          />
        ) : null}
      </Card>
      <AddNic vm={vm} onDone={() => void refresh()} />
    </div>
  );
}

function NicLimits({ vm, nic, onDone }: { vm: Vm; nic: Nic | undefined; onDone: () => void }) {
  const [rx, setRx] = useState<RateInput>(limiterToInput(nic?.rx_rate_limiter));
  const [tx, setTx] = useState<RateInput>(limiterToInput(nic?.tx_rate_limiter));
  const edit = useEdit(vm.id);
  if (!nic) return null;
  return (
    <form
      aria-label={`Rate limits of ${nic.iface_id}`}
      className="mt-4 grid gap-4 rounded-md border border-slate-200 p-3 md:grid-cols-2"
      onSubmit={async (e) => {
        e.preventDefault();
        if (rateError(rx) || rateError(tx)) return;
        const ok = await edit.save(`Limits of ${nic.iface_id}`, () =>
          call(api.vmDevices.updateNic, {
            params: { id: vm.id, nic_id: nic.iface_id },
            body: { rx_rate_limiter: inputToLimiter(rx), tx_rate_limiter: inputToLimiter(tx) },
          }),
        );
        if (ok) onDone();
      }}
    >
      <RateLimitInput
        label={`RX limit of ${nic.iface_id}`}
        value={rx}
        onChange={setRx}
        error={edit.errors.rx_rate_limiter}
      />
      <RateLimitInput
        label={`TX limit of ${nic.iface_id}`}
        value={tx}
        onChange={setTx}
        error={edit.errors.tx_rate_limiter}
      />
      <div className="md:col-span-2">
        <Button type="submit" variant="primary" disabled={edit.busy}>
          Save limits
        </Button>
        <span className="ml-3 text-sm text-slate-600">Applied live on a running VM.</span>
        <OutcomeNote outcome={edit.outcome} />
      </div>
    </form>
  );
}

function AddNic({ vm, onDone }: { vm: Vm; onDone: () => void }) {
  const [network, setNetwork] = useState('default');
  const [mac, setMac] = useState('');
  const edit = useEdit(vm.id);
  return (
    <Card title="Add a network interface">
      <form
        aria-label="Add a network interface"
        noValidate
        className="flex flex-wrap items-end gap-3"
        onSubmit={async (e) => {
          e.preventDefault();
          const ok = await edit.save('Network interface', () =>
            call(api.vmDevices.createNic, { params: { id: vm.id }, body: { network, ...(mac ? { mac } : {}) } }),
          );
          if (ok) onDone();
        }}
      >
        <Field label="NIC network" error={edit.errors.network}>
          {(p) => <input {...p} value={network} onChange={(e) => setNetwork(e.target.value)} />}
        </Field>
        <Field label="NIC MAC address" error={edit.errors.mac} hint="Empty: allocated by the manager">
          {(p) => <input {...p} value={mac} onChange={(e) => setMac(e.target.value)} placeholder="automatic" />}
        </Field>
        <Button type="submit" variant="primary" disabled={edit.busy}>
          Add interface
        </Button>
      </form>
      <OutcomeNote outcome={edit.outcome} />
    </Card>
  );
}
