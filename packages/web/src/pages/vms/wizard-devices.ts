import { api, MMDS_MAX_BYTES } from '@nqvm/api';
import { call, errorMessage, fieldErrors } from '../../lib/api.ts';
import { inputToLimiter, type RateInput, rateError } from '../../lib/rate.ts';

export const LOGGER_LEVELS = ['Error', 'Warning', 'Info', 'Debug', 'Trace', 'Off'] as const;
export type LoggerLevel = (typeof LOGGER_LEVELS)[number];

/** The wizard's device settings (Network and Advanced steps) that the create body does not take. */
export interface DeviceForm {
  nic_rx: RateInput;
  nic_tx: RateInput;
  vsock: boolean;
  vsock_cid: string;
  entropy: boolean;
  entropy_rate: RateInput;
  balloon: boolean;
  balloon_mib: string;
  balloon_deflate: boolean;
  balloon_stats_s: string;
  serial: boolean;
  serial_file: string;
  logger: boolean;
  logger_level: LoggerLevel;
  mmds: boolean;
  mmds_version: 'V1' | 'V2';
  mmds_data: string;
}

export const EMPTY_DEVICES: DeviceForm = {
  nic_rx: { value: '', unit: 'MB/s' },
  nic_tx: { value: '', unit: 'MB/s' },
  vsock: false,
  vsock_cid: '3',
  entropy: false,
  entropy_rate: { value: '', unit: 'KB/s' },
  balloon: false,
  balloon_mib: '0',
  balloon_deflate: true,
  balloon_stats_s: '0',
  serial: false,
  serial_file: 'serial.log',
  logger: false,
  logger_level: 'Warning',
  mmds: false,
  mmds_version: 'V2',
  mmds_data: '{}',
};

export const DEVICE_FIELD_STEP: Record<string, 'Network' | 'Advanced'> = {
  nic_rx: 'Network',
  nic_tx: 'Network',
  vsock_cid: 'Advanced',
  entropy_rate: 'Advanced',
  balloon_mib: 'Advanced',
  balloon_stats_s: 'Advanced',
  serial_file: 'Advanced',
  logger_level: 'Advanced',
  mmds_version: 'Advanced',
  mmds_data: 'Advanced',
};

const int = (s: string, min: number, max: number) => {
  const n = Number(s);
  return s.trim() !== '' && Number.isInteger(n) && n >= min && n <= max ? n : undefined;
};

/** Checks mirroring the device schemas, keyed by the wizard field they concern. */
export function validateDevices(f: DeviceForm, ctx: { memMib: number; network: boolean }): Record<string, string> {
  const e: Record<string, string> = {};
  if (ctx.network) {
    const rx = rateError(f.nic_rx);
    if (rx) e.nic_rx = rx;
    const tx = rateError(f.nic_tx);
    if (tx) e.nic_tx = tx;
  }
  if (f.vsock && int(f.vsock_cid, 3, 0xfffffffe) === undefined) e.vsock_cid = 'an integer from 3 to 4294967294';
  if (f.entropy) {
    const r = rateError(f.entropy_rate);
    if (r) e.entropy_rate = r;
  }
  if (f.balloon) {
    const mib = int(f.balloon_mib, 0, 65536);
    if (mib === undefined) e.balloon_mib = 'an integer number of MiB';
    else if (mib >= ctx.memMib) e.balloon_mib = `must be below the VM memory (${ctx.memMib} MiB)`;
    if (int(f.balloon_stats_s, 0, 3600) === undefined) e.balloon_stats_s = '0 (off) to 3600 seconds';
  }
  if (f.serial) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}\.log$/.test(f.serial_file))
      e.serial_file = 'a file name like serial.log (letters, digits, _ and -, ending in .log)';
    else if (['console.log', 'vmm.log'].includes(f.serial_file)) e.serial_file = `${f.serial_file} is reserved`;
  }
  if (f.mmds) {
    if (!ctx.network) e.mmds_version = 'MMDS is reached over a network interface; choose a network';
    const data = mmdsData(f.mmds_data);
    if (typeof data === 'string') e.mmds_data = data;
  }
  return e;
}

/** The MMDS JSON object, or why the text is not one. */
export function mmdsData(text: string): Record<string, unknown> | string {
  let v: unknown;
  try {
    v = JSON.parse(text || '{}');
  } catch (err) {
    return `invalid JSON: ${(err as Error).message}`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be a JSON object';
  if (new TextEncoder().encode(JSON.stringify(v)).length > MMDS_MAX_BYTES)
    return `at most ${MMDS_MAX_BYTES} bytes of JSON`;
  return v as Record<string, unknown>;
}

/** One device request made right after create, and how its API errors map back onto wizard fields. */
export interface DeviceStep {
  what: string;
  /** Wizard field that shows an error naming no field (or one not listed in `fields`). */
  field: string;
  /** API body field (top level, without `body.`) → wizard field. */
  fields: Record<string, string>;
  apply: (vmId: string) => Promise<unknown>;
}

/** The device requests for a just-created (stopped) VM, in the order they are made. */
export function deviceSteps(f: DeviceForm, ctx: { network: boolean }): DeviceStep[] {
  const steps: DeviceStep[] = [];
  const rx = inputToLimiter(f.nic_rx);
  const tx = inputToLimiter(f.nic_tx);
  if (ctx.network && (rx || tx))
    steps.push({
      what: 'NIC rate limits',
      field: 'nic_rx',
      fields: { rx_rate_limiter: 'nic_rx', tx_rate_limiter: 'nic_tx', nic_id: 'nic_rx' },
      apply: (id) =>
        call(api.vmDevices.updateNic, {
          params: { id, nic_id: 'eth0' },
          body: { ...(rx ? { rx_rate_limiter: rx } : {}), ...(tx ? { tx_rate_limiter: tx } : {}) },
        }),
    });
  if (f.entropy) {
    const rl = inputToLimiter(f.entropy_rate);
    steps.push({
      what: 'entropy device',
      field: 'entropy_rate',
      fields: {},
      apply: (id) => call(api.vmDevices.entropy, { params: { id }, body: rl ? { rate_limiter: rl } : {} }),
    });
  }
  if (f.balloon)
    steps.push({
      what: 'balloon',
      field: 'balloon_mib',
      fields: { amount_mib: 'balloon_mib', stats_polling_interval_s: 'balloon_stats_s' },
      apply: (id) =>
        call(api.vmDevices.putBalloon, {
          params: { id },
          body: {
            amount_mib: Number(f.balloon_mib),
            deflate_on_oom: f.balloon_deflate,
            stats_polling_interval_s: Number(f.balloon_stats_s),
          },
        }),
    });
  if (f.serial)
    steps.push({
      what: 'serial output file',
      field: 'serial_file',
      fields: {},
      apply: (id) => call(api.vmDevices.serial, { params: { id }, body: { serial_out_path: f.serial_file } }),
    });
  if (f.logger)
    steps.push({
      what: 'VMM logger',
      field: 'logger_level',
      fields: {},
      apply: (id) => call(api.vmDevices.logger, { params: { id }, body: { level: f.logger_level } }),
    });
  if (f.vsock)
    steps.push({
      what: 'vsock',
      field: 'vsock_cid',
      fields: {},
      apply: (id) => call(api.vmDevices.vsock, { params: { id }, body: { guest_cid: Number(f.vsock_cid) } }),
    });
  if (f.mmds && ctx.network) {
    const data = mmdsData(f.mmds_data);
    steps.push({
      what: 'MMDS config',
      field: 'mmds_version',
      fields: {},
      apply: (id) =>
        call(api.mmds.putConfig, {
          params: { id },
          body: { version: f.mmds_version, network_interfaces: ['eth0'] },
        }),
    });
    if (typeof data !== 'string' && Object.keys(data).length)
      steps.push({
        what: 'MMDS data',
        field: 'mmds_data',
        fields: {},
        apply: (id) => call(api.mmds.put, { params: { id }, body: data }),
      });
  }
  return steps;
}

/** An API error of a device step as wizard field errors (never lost: unnamed fields land on the step's field). */
export function stepErrors(step: Pick<DeviceStep, 'what' | 'field' | 'fields'>, err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, msg] of Object.entries(fieldErrors(err))) {
    const target = step.fields[k.split('.')[0] ?? k] ?? step.field;
    out[target] ??= `${step.what}: ${msg}`;
  }
  if (!Object.keys(out).length) out[step.field] = `${step.what}: ${errorMessage(err)}`;
  return out;
}
