import { api, type MmdsConfigView, type MmdsVersion, type Vm } from '@nqvm/api';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Button, Card, ErrorState, Field, Loading } from '../../components/ui.tsx';
import { call, errorMessage, fieldErrors } from '../../lib/api.ts';

type Kind = 'text' | 'json';
interface Row {
  key: string;
  kind: Kind;
  value: string;
}

/** Starting points the seed's metadata editor offered: cloud-init-like user data, SSH keys, a custom key. */
const TEMPLATES: { label: string; row: Row }[] = [
  {
    label: 'cloud-init user data',
    row: {
      key: 'user-data',
      kind: 'text',
      value: '#cloud-config\nhostname: my-vm\npackages:\n  - curl\nruncmd:\n  - echo hello from user-data\n',
    },
  },
  {
    label: 'SSH keys',
    row: { key: 'public-keys', kind: 'json', value: '{\n  "0": { "openssh-key": "ssh-ed25519 AAAA… me@laptop" }\n}' },
  },
  { label: 'Custom key', row: { key: '', kind: 'text', value: '' } },
];

function toRows(data: Record<string, unknown>): Row[] {
  return Object.entries(data).map(([key, v]) =>
    typeof v === 'string' ? { key, kind: 'text', value: v } : { key, kind: 'json', value: JSON.stringify(v, null, 2) },
  );
}

/** The JSON the rows stand for, or the first problem (named by row) that stops it from being saved. */
function fromRows(rows: Row[]): { data: Record<string, unknown> } | { error: string; row: number } {
  const data: Record<string, unknown> = {};
  for (const [i, r] of rows.entries()) {
    if (!r.key.trim()) return { error: 'a key is required', row: i };
    if (r.key in data) return { error: `the key ${r.key} appears twice`, row: i };
    if (r.kind === 'text') data[r.key] = r.value;
    else
      try {
        data[r.key] = JSON.parse(r.value);
      } catch (e) {
        return { error: `not JSON: ${(e as Error).message}`, row: i };
      }
  }
  return { data };
}

/** What `GET http://<address>/<path>` answers inside the guest (MMDS V1 text form): a listing or the value. */
function guestView(data: unknown, path = ''): [string, string][] {
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    const entries = Object.entries(data as Record<string, unknown>);
    const listing = entries.map(([k, v]) => (v && typeof v === 'object' ? `${k}/` : k)).join('\n');
    return [[`${path}/`, listing], ...entries.flatMap(([k, v]) => guestView(v, `${path}/${k}`))];
  }
  return [[path, typeof data === 'string' ? data : JSON.stringify(data)]];
}

export function MetadataTab({ vm }: { vm: Vm }) {
  const q = useQuery({
    queryKey: ['vm', vm.id, 'mmds'],
    queryFn: () => call(api.mmds.get, { params: { id: vm.id } }),
  });
  const config = useQuery({
    queryKey: ['vm', vm.id, 'mmds-config'],
    queryFn: () => call(api.mmds.getConfig, { params: { id: vm.id } }),
  });
  if (q.isPending || config.isPending) return <Loading />;
  if (q.error) return <ErrorState error={q.error} what="The metadata service (MMDS)" retry={() => q.refetch()} />;
  if (config.error) return <ErrorState error={config.error} what="MMDS settings" retry={() => config.refetch()} />;
  return (
    <div className="flex flex-col gap-4">
      <MetadataEditor vm={vm} data={q.data} config={config.data} />
      <MmdsConfigForm vm={vm} config={config.data} />
    </div>
  );
}

function MetadataEditor({ vm, data, config }: { vm: Vm; data: Record<string, unknown>; config: MmdsConfigView }) {
  const qc = useQueryClient();
  const [rows, setRows] = useState<Row[]>(() => toRows(data));
  // The JSON view shows the rows; while typed in, it shows the typed text (valid JSON replaces the rows).
  const [draft, setDraft] = useState<string | null>(null);
  const [jsonError, setJsonError] = useState<string | null>(null);
  const [status, setStatus] = useState<{ text: string; error?: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const built = fromRows(rows);
  const saved = JSON.stringify(data);
  const dirty = 'data' in built ? JSON.stringify(built.data) !== saved : true;
  const editRows = (fn: (rs: Row[]) => Row[]) => {
    setDraft(null);
    setJsonError(null);
    setRows(fn);
  };
  const update = (i: number, patch: Partial<Row>) =>
    editRows((rs) => rs.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const json = draft ?? ('data' in built ? JSON.stringify(built.data, null, 2) : '');
  const save = async () => {
    if (!('data' in built)) return;
    setBusy(true);
    try {
      await call(api.mmds.put, { params: { id: vm.id }, body: built.data });
      setStatus({ text: 'Saved: the guest reads the new data now' });
      await qc.invalidateQueries({ queryKey: ['vm', vm.id, 'mmds'] });
    } catch (err) {
      setStatus({ text: errorMessage(err), error: true });
    } finally {
      setBusy(false);
    }
  };
  const preview = 'data' in built ? guestView(built.data) : [];
  return (
    <Card
      title="Metadata (MMDS)"
      actions={TEMPLATES.map((t) => (
        <Button key={t.label} onClick={() => editRows((rs) => [...rs, { ...t.row }])}>
          Add {t.label}
        </Button>
      ))}
    >
      <div className="grid gap-4 lg:grid-cols-2">
        <fieldset className="flex min-w-0 flex-col gap-3">
          <legend className="mb-2 text-sm font-medium text-slate-700">Keys</legend>
          {rows.length === 0 ? <p className="text-sm text-slate-500">No metadata. Add a key or a template.</p> : null}
          {rows.map((r, i) => (
            <MetadataRow
              // biome-ignore lint/suspicious/noArrayIndexKey: rows have no identity but their position while edited
              key={i}
              row={r}
              index={i}
              error={'error' in built && built.row === i ? built.error : undefined}
              onChange={(p) => update(i, p)}
              onRemove={() => editRows((rs) => rs.filter((_, j) => j !== i))}
            />
          ))}
        </fieldset>
        <div className="flex min-w-0 flex-col gap-3">
          <Field label="JSON" error={jsonError ?? undefined} hint="Edit here or in the keys; both stay in step.">
            {(p) => (
              <textarea
                {...p}
                rows={10}
                className={`${p.className} font-mono text-xs`}
                value={json}
                onChange={(e) => {
                  setDraft(e.target.value);
                  try {
                    const v = JSON.parse(e.target.value) as unknown;
                    if (!v || typeof v !== 'object' || Array.isArray(v))
                      throw new Error('the top level must be an object');
                    setJsonError(null);
                    setRows(toRows(v as Record<string, unknown>));
                  } catch (err) {
                    setJsonError(`not saved: ${(err as Error).message}`);
                  }
                }}
              />
            )}
          </Field>
          <section aria-label="What the guest reads">
            <h3 className="mb-1 text-sm font-medium text-slate-700">
              What the guest reads ({config.version} at http://{config.ipv4_address})
            </h3>
            <dl className="max-h-64 overflow-auto rounded bg-slate-100 p-2 font-mono text-xs">
              {preview.map(([path, body]) => (
                <div key={path} className="mb-1">
                  <dt className="text-slate-500">GET {path}</dt>
                  <dd className="whitespace-pre-wrap break-all">{body || '(empty)'}</dd>
                </div>
              ))}
            </dl>
          </section>
        </div>
      </div>
      <div className="mt-3 flex flex-wrap items-center gap-3">
        <Button variant="primary" disabled={!dirty || busy || 'error' in built || Boolean(jsonError)} onClick={save}>
          {busy ? 'Saving…' : 'Save metadata'}
        </Button>
        <Button
          disabled={!dirty || busy}
          onClick={() => {
            editRows(() => toRows(data));
            setStatus(null);
          }}
        >
          Revert
        </Button>
        {status ? (
          <span role="status" className={`text-sm ${status.error ? 'text-red-700' : 'text-slate-600'}`}>
            {status.text}
          </span>
        ) : null}
      </div>
    </Card>
  );
}

function MetadataRow({
  row,
  index,
  error,
  onChange,
  onRemove,
}: {
  row: Row;
  index: number;
  error: string | undefined;
  onChange: (p: Partial<Row>) => void;
  onRemove: () => void;
}) {
  const n = index + 1;
  return (
    <div className="rounded border border-slate-200 p-2" data-testid="metadata-row">
      <div className="grid grid-cols-[1fr_auto_auto] items-end gap-2">
        <Field label={`Key ${n}`}>
          {(p) => <input {...p} value={row.key} onChange={(e) => onChange({ key: e.target.value })} />}
        </Field>
        <Field label={`Type ${n}`}>
          {(p) => (
            <select {...p} value={row.kind} onChange={(e) => onChange({ kind: e.target.value as Kind })}>
              <option value="text">text</option>
              <option value="json">JSON</option>
            </select>
          )}
        </Field>
        <Button variant="ghost" aria-label={`Remove key ${n}`} onClick={onRemove}>
          Remove
        </Button>
      </div>
      <Field label={`Value ${n}`} error={error}>
        {(p) => (
          <textarea
            {...p}
            rows={Math.min(8, Math.max(1, row.value.split('\n').length))}
            className={`${p.className} font-mono text-xs`}
            value={row.value}
            onChange={(e) => onChange({ value: e.target.value })}
          />
        )}
      </Field>
    </div>
  );
}

function MmdsConfigForm({ vm, config }: { vm: Vm; config: MmdsConfigView }) {
  const qc = useQueryClient();
  const [version, setVersion] = useState<MmdsVersion>(config.version);
  const [address, setAddress] = useState(config.ipv4_address);
  const [ifaces, setIfaces] = useState<string[]>(config.network_interfaces);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [status, setStatus] = useState<string | null>(null);
  const groupId = useId();
  const localError = !/^169\.254\.\d{1,3}\.\d{1,3}$/.test(address)
    ? 'a link-local address 169.254.x.y'
    : ifaces.length === 0
      ? undefined
      : undefined;
  const dirty =
    version !== config.version ||
    address !== config.ipv4_address ||
    [...ifaces].sort().join() !== [...config.network_interfaces].sort().join();
  const save = async () => {
    setErrors({});
    try {
      await call(api.mmds.putConfig, {
        params: { id: vm.id },
        body: { version, ipv4_address: address, network_interfaces: ifaces },
      });
      setStatus('Saved');
      await qc.invalidateQueries({ queryKey: ['vm', vm.id, 'mmds-config'] });
    } catch (err) {
      setErrors(fieldErrors(err));
      setStatus(errorMessage(err));
    }
  };
  return (
    <Card title="Metadata service settings">
      <div className="grid gap-3 sm:grid-cols-3">
        <Field label="MMDS version" hint="V2 needs a session token (PUT /latest/api/token) first">
          {(p) => (
            <select {...p} value={version} onChange={(e) => setVersion(e.target.value as MmdsVersion)}>
              <option value="V1">V1</option>
              <option value="V2">V2</option>
            </select>
          )}
        </Field>
        <Field label="MMDS address" error={localError ?? errors.ipv4_address}>
          {(p) => <input {...p} value={address} onChange={(e) => setAddress(e.target.value)} />}
        </Field>
        <fieldset aria-labelledby={groupId} className="flex flex-col gap-1">
          <span id={groupId} className="text-sm font-medium text-slate-700">
            Interfaces
          </span>
          {vm.nics.length === 0 ? (
            <span className="text-sm text-slate-500">The VM has no network interface.</span>
          ) : null}
          {vm.nics.map((n) => (
            <label key={n.iface_id} className="flex items-center gap-2 text-sm">
              <input
                type="checkbox"
                checked={ifaces.includes(n.iface_id)}
                onChange={(e) =>
                  setIfaces((xs) => (e.target.checked ? [...xs, n.iface_id] : xs.filter((x) => x !== n.iface_id)))
                }
              />
              {n.iface_id} ({n.ip})
            </label>
          ))}
          {errors.network_interfaces ? (
            <p role="alert" className="text-xs text-red-600">
              {errors.network_interfaces}
            </p>
          ) : ifaces.length === 0 ? (
            <p className="text-xs text-red-600">Choose at least one interface.</p>
          ) : null}
        </fieldset>
      </div>
      <div className="mt-3 flex items-center gap-3">
        <Button variant="primary" disabled={!dirty || Boolean(localError) || ifaces.length === 0} onClick={save}>
          Save settings
        </Button>
        {status ? (
          <span role="status" className="text-sm text-slate-600">
            {status}
          </span>
        ) : null}
      </div>
    </Card>
  );
}
