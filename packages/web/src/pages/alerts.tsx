import { type AlertMetric, type AlertRule, type AlertRuleKind, type AlertRuleRequest, api } from '@nqvm/api';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmButton, Modal } from '../components/dialog.tsx';
import { Badge, Button, Card, Empty, ErrorState, Field, Loading, PageHeader } from '../components/ui.tsx';
import { call, errorMessage, fieldErrors, listAllHosts } from '../lib/api.ts';
import { formatAgo } from '../lib/format.ts';
import { useCan } from '../lib/session.tsx';

const KINDS: [AlertRuleKind, string][] = [
  ['vm_crashed', 'A VM crashed'],
  ['host_unreachable', 'A host is unreachable'],
  ['metric_above', 'A metric stays above a threshold'],
];
const METRICS: [AlertMetric, string][] = [
  ['guest_cpu_percent', 'Guest CPU %'],
  ['host_cpu_percent', 'Host CPU % (the VMM process)'],
  ['memory_percent', 'Memory used %'],
];

export function AlertsPage() {
  const can = useCan();
  const [editing, setEditing] = useState<AlertRule | 'new' | null>(null);
  const rules = useQuery({
    queryKey: ['alert-rules'],
    queryFn: () => call(api.alertRules.list, { query: { limit: 500 } }),
    refetchInterval: 10_000,
  });
  return (
    <>
      <PageHeader
        title="Alerts"
        actions={
          can('alert:write') ? (
            <Button variant="primary" onClick={() => setEditing('new')}>
              New alert rule
            </Button>
          ) : null
        }
      />
      {rules.isPending ? (
        <Loading />
      ) : rules.error ? (
        <ErrorState error={rules.error} what="Alert rules" retry={() => rules.refetch()} />
      ) : rules.data.items.length === 0 ? (
        <Empty>No alert rules. A rule fires as an alert.firing event (and so a webhook delivery).</Empty>
      ) : (
        <div className="flex flex-col gap-3">
          {rules.data.items.map((r) => (
            <RuleCard key={r.id} rule={r} onEdit={can('alert:write') ? () => setEditing(r) : undefined} />
          ))}
        </div>
      )}
      {editing ? <RuleDialog rule={editing === 'new' ? null : editing} close={() => setEditing(null)} /> : null}
    </>
  );
}

function describe(r: AlertRule): string {
  const scope = r.vm_id ? `VM ${r.vm_id.slice(0, 8)}` : r.host_id ? `host ${r.host_id.slice(0, 8)}` : '';
  if (r.kind === 'quota_above')
    return `A quota limit over ${r.threshold}% used (${r.project_id ? `project ${r.project_id.slice(0, 8)}` : 'any project'})`;
  if (r.kind === 'metric_above')
    return `${METRICS.find(([m]) => m === r.metric)?.[1] ?? r.metric} above ${r.threshold}% for ${r.duration_s} s${scope ? ` on ${scope}` : ''}`;
  return `${KINDS.find(([k]) => k === r.kind)?.[1]}${scope ? ` (${scope})` : ' (any)'}`;
}

function RuleCard({ rule, onEdit }: { rule: AlertRule; onEdit: (() => void) | undefined }) {
  const qc = useQueryClient();
  const firing = rule.firing.length > 0;
  return (
    <Card
      title={
        <span className="flex flex-wrap items-center gap-2" data-alert-rule={rule.name}>
          {rule.name}
          {!rule.enabled ? <Badge value="disabled" /> : firing ? <Badge value="firing" /> : <Badge value="ok" />}
        </span>
      }
      actions={
        onEdit ? (
          <>
            <Button variant="ghost" onClick={onEdit}>
              Edit
            </Button>
            <ConfirmButton
              label="Delete"
              variant="danger"
              title={`Delete alert rule ${rule.name}?`}
              description="What it fires for stops being reported."
              confirmLabel="Delete"
              onConfirm={async () => {
                await call(api.alertRules.delete, { params: { id: rule.id } });
                await qc.invalidateQueries({ queryKey: ['alert-rules'] });
              }}
            />
          </>
        ) : null
      }
    >
      <p className="text-sm text-slate-700">{describe(rule)}</p>
      {rule.description ? <p className="mt-1 text-xs text-slate-500">{rule.description}</p> : null}
      {firing ? (
        <ul className="mt-3 flex flex-col gap-1 text-sm" aria-label={`Firing for ${rule.name}`}>
          {rule.firing.map((f) => (
            <li key={f.id} className="rounded border border-red-200 bg-red-50 px-2 py-1 text-red-900">
              <span className="font-medium">
                {f.subject_type} {f.subject_name}
              </span>{' '}
              since {formatAgo(f.since)}: {f.reason}
            </li>
          ))}
        </ul>
      ) : null}
    </Card>
  );
}

interface Draft {
  name: string;
  kind: AlertRuleKind;
  description: string;
  vm_id: string;
  host_id: string;
  metric: AlertMetric;
  threshold: string;
  duration_s: string;
  enabled: boolean;
}

function draftOf(r: AlertRule | null): Draft {
  return {
    name: r?.name ?? '',
    kind: r?.kind ?? 'vm_crashed',
    description: r?.description ?? '',
    vm_id: r?.vm_id ?? '',
    host_id: r?.host_id ?? '',
    metric: r?.metric ?? 'guest_cpu_percent',
    threshold: r?.threshold != null ? String(r.threshold) : '90',
    duration_s: r?.duration_s != null ? String(r.duration_s) : '60',
    enabled: r?.enabled ?? true,
  };
}

/** The request for a draft: only the fields its kind uses, the others null. */
function requestOf(d: Draft): AlertRuleRequest {
  const metric = d.kind === 'metric_above';
  return {
    name: d.name,
    kind: d.kind,
    description: d.description,
    vm_id: d.kind !== 'host_unreachable' && d.vm_id ? d.vm_id : null,
    host_id: d.kind === 'host_unreachable' && d.host_id ? d.host_id : null,
    metric: metric ? d.metric : null,
    threshold: metric ? Number(d.threshold) : null,
    duration_s: metric ? Number(d.duration_s) : null,
    enabled: d.enabled,
  };
}

function RuleDialog({ rule, close }: { rule: AlertRule | null; close: () => void }) {
  const qc = useQueryClient();
  const [d, setD] = useState(() => draftOf(rule));
  const set = (patch: Partial<Draft>) => setD((x) => ({ ...x, ...patch }));
  const vms = useQuery({ queryKey: ['vms', 'names'], queryFn: () => call(api.vms.list, { query: { limit: 500 } }) });
  const hosts = useQuery({ queryKey: ['hosts'], queryFn: listAllHosts });
  const save = useMutation({
    mutationFn: async () => {
      const { kind, ...patch } = requestOf(d);
      if (rule) return call(api.alertRules.update, { params: { id: rule.id }, body: patch });
      return call(api.alertRules.create, { body: { kind, ...patch } });
    },
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: ['alert-rules'] });
      close();
    },
  });
  const errs = fieldErrors(save.error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate();
  };
  return (
    <Modal open onOpenChange={(o) => (o ? undefined : close())} title={rule ? `Edit ${rule.name}` : 'New alert rule'}>
      <form className="flex flex-col gap-3" onSubmit={submit}>
        <Field label="Name" error={errs.name}>
          {(p) => (
            <input {...p} required maxLength={63} value={d.name} onChange={(e) => set({ name: e.target.value })} />
          )}
        </Field>
        <Field label="Fires when" error={errs.kind} hint={rule ? 'The kind of a rule cannot change' : undefined}>
          {(p) => (
            <select
              {...p}
              disabled={Boolean(rule)}
              value={d.kind}
              onChange={(e) => set({ kind: e.target.value as AlertRuleKind })}
            >
              {KINDS.map(([k, label]) => (
                <option key={k} value={k}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        {d.kind === 'host_unreachable' ? (
          <Field label="Host" error={errs.host_id}>
            {(p) => (
              <select {...p} value={d.host_id} onChange={(e) => set({ host_id: e.target.value })}>
                <option value="">Every host</option>
                {hosts.data?.items.map((h) => (
                  <option key={h.id} value={h.id}>
                    {h.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
        ) : (
          <Field label="VM" error={errs.vm_id}>
            {(p) => (
              <select {...p} value={d.vm_id} onChange={(e) => set({ vm_id: e.target.value })}>
                <option value="">Every VM</option>
                {vms.data?.items.map((v) => (
                  <option key={v.id} value={v.id}>
                    {v.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}
        {d.kind === 'metric_above' ? (
          <div className="grid gap-3 sm:grid-cols-3">
            <Field label="Metric" error={errs.metric}>
              {(p) => (
                <select {...p} value={d.metric} onChange={(e) => set({ metric: e.target.value as AlertMetric })}>
                  {METRICS.map(([m, label]) => (
                    <option key={m} value={m}>
                      {label}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Above (%)" error={errs.threshold}>
              {(p) => (
                <input
                  {...p}
                  type="number"
                  min={0}
                  max={100}
                  step="any"
                  required
                  value={d.threshold}
                  onChange={(e) => set({ threshold: e.target.value })}
                />
              )}
            </Field>
            <Field label="For (seconds)" error={errs.duration_s}>
              {(p) => (
                <input
                  {...p}
                  type="number"
                  min={1}
                  max={86400}
                  required
                  value={d.duration_s}
                  onChange={(e) => set({ duration_s: e.target.value })}
                />
              )}
            </Field>
          </div>
        ) : null}
        <Field label="Description" error={errs.description}>
          {(p) => <input {...p} value={d.description} onChange={(e) => set({ description: e.target.value })} />}
        </Field>
        <label className="flex items-center gap-2 text-sm">
          <input type="checkbox" checked={d.enabled} onChange={(e) => set({ enabled: e.target.checked })} />
          Enabled
        </label>
        {save.error && !Object.keys(errs).length ? (
          <p role="alert" className="text-sm text-red-600">
            {errorMessage(save.error)}
          </p>
        ) : null}
        <div className="flex justify-end gap-2">
          <Button onClick={close}>Cancel</Button>
          <Button type="submit" variant="primary" disabled={save.isPending}>
            {rule ? 'Save' : 'Create rule'}
          </Button>
        </div>
      </form>
    </Modal>
  );
}
