import { api, type CreateVmRequest, type Host, type Image } from '@nqvm/api';
import { type ReactNode, useState } from 'react';
import { Button } from '../../components/ui.tsx';
import { formatBytes, formatMib } from '../../lib/format.ts';
import { deviceSteps } from './wizard-devices.ts';
import { type Step, toRequest, type WizardForm } from './wizard-model.ts';

/** Stands in for the password in a command shown on screen and copied: the secret never leaves the form. */
const PASSWORD_VAR = '$NQVM_VM_PASSWORD';

function shellQuote(v: string): string {
  return /^[A-Za-z0-9._:/=,@+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** `nqvm vms create` with one flag per field (the CLI's flags are the API's fields, kebab-cased). */
export function cliCommand(req: CreateVmRequest): string {
  const parts = ['nqvm vms create'];
  for (const [k, v] of Object.entries(req)) {
    const flag = `--${k.replace(/_/g, '-')}`;
    if (k === 'password') parts.push(`${flag} "${PASSWORD_VAR}"`);
    else if (Array.isArray(v)) for (const item of v) parts.push(`${flag} ${shellQuote(String(item))}`);
    else if (v === null) parts.push(`${flag} null`);
    else if (typeof v === 'object') parts.push(`${flag} ${shellQuote(JSON.stringify(v))}`);
    else parts.push(`${flag} ${shellQuote(String(v))}`);
  }
  return parts.join(' \\\n  ');
}

/** The same request as HTTP, for curl with an API token. */
export function apiRequest(req: CreateVmRequest, origin: string): string {
  const body = { ...req, ...(req.password ? { password: PASSWORD_VAR } : {}) };
  const def = api.vms.create;
  return [
    `curl -X ${def.method} ${origin}${def.path} \\`,
    `  -H "authorization: Bearer $NQVM_TOKEN" -H 'content-type: application/json' \\`,
    `  -d '${JSON.stringify(body, null, 2).replace(/'/g, `'\\''`)}'`,
  ].join('\n');
}

interface ReviewProps {
  form: WizardForm;
  errors: Record<string, string>;
  fieldStep: Record<string, Step>;
  images: Image[];
  hosts: Host[];
  templateName?: string | undefined;
  goTo: (s: Step) => void;
}

/** The wizard's last step in words: names and sizes, not field names and ids; then the request to copy. */
export function WizardReview({ form, errors, fieldStep, images, hosts, templateName, goTo }: ReviewProps) {
  const req = toRequest(form);
  const image = (id: string) => {
    const i = images.find((x) => x.id === id);
    return i ? `${i.name}${i.size_bytes ? ` (${formatBytes(i.size_bytes)})` : ''}` : id || '—';
  };
  const devices = deviceSteps(form, { network: !form.no_network }).map((d) => d.what);
  const sections: [Step, [string, ReactNode][]][] = [
    [
      'Basics',
      [
        ['Name', form.name || '—'],
        ['From template', templateName ?? 'none'],
        ['Description', form.description || '—'],
        ['Owner / environment', `${form.owner || '—'} / ${form.environment || '—'}`],
        ['Tags', req.tags?.join(', ') || 'none'],
      ],
    ],
    [
      'Credentials',
      [
        ['Login', `${form.username || 'root'}${form.password ? ' with a password' : ' without a password'}`],
        ['SSH keys', `${req.ssh_authorized_keys?.length ?? 0}`],
      ],
    ],
    [
      'Machine',
      [
        ['Size', `${req.vcpu} vCPU, ${Number.isFinite(req.mem_mib) ? formatMib(req.mem_mib) : '—'} memory`],
        [
          'VMM',
          form.vmm === 'qemu' ? 'QEMU microvm' : form.vmm === 'firecracker' ? 'Firecracker' : "the host's default",
        ],
        ['CPU', `${form.cpu_template || 'default'} template${form.smt ? ', SMT on' : ''}`],
      ],
    ],
    [
      'Boot source',
      [
        ['Kernel', image(form.kernel_image_id)],
        ['Initrd', form.initrd_image_id ? image(form.initrd_image_id) : 'none'],
        ['Root filesystem', image(form.rootfs_image_id)],
        ['Boot arguments', form.boot_args || "the VMM's defaults"],
      ],
    ],
    [
      'Network',
      [
        ['Network', form.no_network ? 'none' : form.network || 'default'],
        ['MAC address', form.no_network ? '—' : form.mac_mode === 'given' ? form.mac : 'generated'],
      ],
    ],
    [
      'Advanced',
      [
        ['Devices', devices.length ? devices.join(', ') : 'defaults'],
        ['Host', hosts.find((h) => h.id === form.host_id)?.name ?? 'chosen by the scheduler'],
        ['Restart policy', form.restart_policy || 'never'],
        ['After create', form.start ? 'start it' : 'leave it stopped'],
      ],
    ],
  ];
  const stepErrors = (s: Step) => Object.entries(errors).filter(([k]) => (fieldStep[k] ?? 'Review') === s);
  return (
    <div className="flex flex-col gap-4">
      {sections.map(([step, rows]) => (
        <section key={step} aria-label={`Review: ${step}`}>
          <h3 className="mb-1 flex items-center justify-between text-sm font-semibold">
            {step}
            <button type="button" className="text-xs font-normal text-blue-700 underline" onClick={() => goTo(step)}>
              Change
            </button>
          </h3>
          <dl className="grid grid-cols-[minmax(7rem,12rem)_1fr] gap-x-3 gap-y-1 text-sm">
            {rows.map(([k, v]) => (
              <div key={k} className="contents">
                <dt className="text-slate-500">{k}</dt>
                <dd className="min-w-0 break-words">{v}</dd>
              </div>
            ))}
          </dl>
          {stepErrors(step).map(([k, msg]) => (
            <p key={k} role="alert" className="mt-1 text-sm text-red-700">
              {k}: {msg}
            </p>
          ))}
        </section>
      ))}
      <CopyBlock label="Equivalent CLI command" text={cliCommand(req)} />
      <CopyBlock label="Equivalent API request" text={apiRequest(req, location.origin)} />
      <p className="text-xs text-slate-500">
        {PASSWORD_VAR} stands for the password typed in the form; $NQVM_TOKEN for an API token (Settings).
        {devices.length ? ' Device settings are separate requests the console makes after create.' : ''}
      </p>
    </div>
  );
}

function CopyBlock({ label, text }: { label: string; text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <section aria-label={label}>
      <h3 className="mb-1 flex items-center justify-between text-sm font-semibold">
        {label}
        <Button
          variant="secondary"
          onClick={async () => {
            await navigator.clipboard?.writeText(text).catch(() => undefined);
            setCopied(true);
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </Button>
      </h3>
      <pre className="overflow-x-auto rounded bg-slate-100 p-2 text-xs">
        <code>{text}</code>
      </pre>
    </section>
  );
}
