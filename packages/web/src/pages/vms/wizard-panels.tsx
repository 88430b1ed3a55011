import type { Host } from '@nqvm/api';
import type { ReactNode } from 'react';
import { RateLimitInput } from '../../components/rate-limit.tsx';
import { Field } from '../../components/ui.tsx';
import { LOGGER_LEVELS, type LoggerLevel } from './wizard-devices.ts';
import type { WizardForm } from './wizard-model.ts';

interface PanelProps {
  form: WizardForm;
  upd: <K extends keyof WizardForm>(k: K, v: WizardForm[K]) => void;
  err: (k: string) => string | undefined;
}

export function Grid({ children }: { children: ReactNode }) {
  return <div className="grid gap-4 md:grid-cols-2">{children}</div>;
}

function Check({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label className="flex items-center gap-2 text-sm font-medium">
      <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} /> {label}
    </label>
  );
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <fieldset className="rounded-md border border-slate-200 p-3">
      <legend className="px-1 text-sm font-semibold text-slate-700">{title}</legend>
      <div className="flex flex-col gap-3">{children}</div>
    </fieldset>
  );
}

export function NetworkPanel({ form, upd, err }: PanelProps) {
  const off = form.no_network;
  return (
    <Grid>
      <Check label="No network" checked={off} onChange={(v) => upd('no_network', v)} />
      <Field label="Network" error={err('network')}>
        {(p) => <input {...p} disabled={off} value={form.network} onChange={(e) => upd('network', e.target.value)} />}
      </Field>
      <Field label="MAC address mode" error={undefined}>
        {(p) => (
          <select
            {...p}
            disabled={off}
            value={form.mac_mode}
            onChange={(e) => upd('mac_mode', e.target.value as WizardForm['mac_mode'])}
          >
            <option value="auto">automatic (allocated by the manager)</option>
            <option value="given">given</option>
          </select>
        )}
      </Field>
      <Field label="MAC address" error={err('mac')} hint="Lower-case, e.g. 02:00:00:00:00:01">
        {(p) => (
          <input
            {...p}
            disabled={off || form.mac_mode === 'auto'}
            value={form.mac_mode === 'auto' ? '' : form.mac}
            onChange={(e) => upd('mac', e.target.value)}
            placeholder={form.mac_mode === 'auto' ? 'automatic' : '02:00:00:00:00:01'}
          />
        )}
      </Field>
      <RateLimitInput
        label="Receive (RX) rate limit"
        value={form.nic_rx}
        onChange={(v) => upd('nic_rx', v)}
        error={err('nic_rx')}
        disabled={off}
      />
      <RateLimitInput
        label="Transmit (TX) rate limit"
        value={form.nic_tx}
        onChange={(v) => upd('nic_tx', v)}
        error={err('nic_tx')}
        disabled={off}
      />
    </Grid>
  );
}

export function AdvancedPanel({ form, upd, err, hosts }: PanelProps & { hosts: Host[] }) {
  return (
    <div className="flex flex-col gap-4">
      <Grid>
        <Field label="Restart policy" error={err('restart_policy')}>
          {(p) => (
            <select
              {...p}
              value={form.restart_policy}
              onChange={(e) => upd('restart_policy', e.target.value as WizardForm['restart_policy'])}
            >
              <option value="">default (never)</option>
              <option value="never">never</option>
              <option value="on-failure">on failure</option>
              <option value="always">always</option>
            </select>
          )}
        </Field>
        <Field label="Host" error={err('host_id')} hint="Default: the scheduler picks one">
          {(p) => (
            <select {...p} value={form.host_id} onChange={(e) => upd('host_id', e.target.value)}>
              <option value="">any</option>
              {hosts.map((h) => (
                <option key={h.id} value={h.id}>
                  {h.name} ({h.health})
                </option>
              ))}
            </select>
          )}
        </Field>
        <Check label="Boot right after creation" checked={form.start} onChange={(v) => upd('start', v)} />
      </Grid>
      <p className="text-sm text-slate-600">
        Devices are added right after the VM is created, while it is still stopped; it boots once they are in.
      </p>
      <Grid>
        <Section title="Vsock">
          <Check label="Add a vsock device" checked={form.vsock} onChange={(v) => upd('vsock', v)} />
          {form.vsock ? (
            <Field label="Guest CID" error={err('vsock_cid')} hint="3 or more; needs /dev/vhost-vsock on the host">
              {(p) => (
                <input
                  {...p}
                  inputMode="numeric"
                  value={form.vsock_cid}
                  onChange={(e) => upd('vsock_cid', e.target.value)}
                />
              )}
            </Field>
          ) : null}
        </Section>
        <Section title="Entropy">
          <Check
            label="Add an entropy device (virtio-rng)"
            checked={form.entropy}
            onChange={(v) => upd('entropy', v)}
          />
          {form.entropy ? (
            <RateLimitInput
              label="Entropy rate limit"
              value={form.entropy_rate}
              onChange={(v) => upd('entropy_rate', v)}
              error={err('entropy_rate')}
            />
          ) : null}
        </Section>
        <Section title="Balloon">
          <Check label="Add a memory balloon" checked={form.balloon} onChange={(v) => upd('balloon', v)} />
          {form.balloon ? (
            <>
              <Field label="Balloon size (MiB)" error={err('balloon_mib')} hint="Memory taken back from the guest">
                {(p) => (
                  <input
                    {...p}
                    inputMode="numeric"
                    value={form.balloon_mib}
                    onChange={(e) => upd('balloon_mib', e.target.value)}
                  />
                )}
              </Field>
              <Check
                label="Deflate on out-of-memory"
                checked={form.balloon_deflate}
                onChange={(v) => upd('balloon_deflate', v)}
              />
              <Field label="Statistics interval (s)" error={err('balloon_stats_s')} hint="0 turns statistics off">
                {(p) => (
                  <input
                    {...p}
                    inputMode="numeric"
                    value={form.balloon_stats_s}
                    onChange={(e) => upd('balloon_stats_s', e.target.value)}
                  />
                )}
              </Field>
            </>
          ) : null}
        </Section>
        <Section title="Serial">
          <Check label="Also write serial output to a file" checked={form.serial} onChange={(v) => upd('serial', v)} />
          {form.serial ? (
            <Field label="Serial output file" error={err('serial_file')} hint="A file in the VM's own directory">
              {(p) => <input {...p} value={form.serial_file} onChange={(e) => upd('serial_file', e.target.value)} />}
            </Field>
          ) : null}
        </Section>
        <Section title="Logger">
          <Check label="Set the VMM log level" checked={form.logger} onChange={(v) => upd('logger', v)} />
          {form.logger ? (
            <Field label="Logger level" error={err('logger_level')}>
              {(p) => (
                <select
                  {...p}
                  value={form.logger_level}
                  onChange={(e) => upd('logger_level', e.target.value as LoggerLevel)}
                >
                  {LOGGER_LEVELS.map((l) => (
                    <option key={l} value={l}>
                      {l}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          ) : null}
        </Section>
        <Section title="Metadata service (MMDS)">
          <Check label="Serve metadata (MMDS) on eth0" checked={form.mmds} onChange={(v) => upd('mmds', v)} />
          {form.mmds ? (
            <>
              <Field label="MMDS version" error={err('mmds_version')} hint="V2 needs a session token (IMDSv2 style)">
                {(p) => (
                  <select
                    {...p}
                    value={form.mmds_version}
                    onChange={(e) => upd('mmds_version', e.target.value as 'V1' | 'V2')}
                  >
                    <option value="V1">V1</option>
                    <option value="V2">V2</option>
                  </select>
                )}
              </Field>
              <Field label="MMDS data (JSON)" error={err('mmds_data')}>
                {(p) => (
                  <textarea
                    {...p}
                    rows={5}
                    className={`${p.className} font-mono`}
                    value={form.mmds_data}
                    onChange={(e) => upd('mmds_data', e.target.value)}
                  />
                )}
              </Field>
            </>
          ) : null}
        </Section>
      </Grid>
    </div>
  );
}
