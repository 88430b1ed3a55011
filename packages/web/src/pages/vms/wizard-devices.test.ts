import { ApiError } from '@nqvm/api';
import { describe, expect, it } from 'vitest';
import { deviceSteps, EMPTY_DEVICES, stepErrors, validateDevices } from './wizard-devices.ts';
import { EMPTY_FORM, toRequest, validate } from './wizard-model.ts';

const problem = (field: string, detail: string) =>
  new ApiError(422, { type: 'about:blank', title: 'Unprocessable', status: 422, code: 'x', detail, field });

describe('wizard devices', () => {
  it('makes no device requests for the defaults, so the VM is created and booted in one request', () => {
    expect(deviceSteps(EMPTY_DEVICES, { network: true })).toEqual([]);
    expect(toRequest({ ...EMPTY_FORM, name: 'a' }).start).toBe(true);
  });

  it('orders the device requests and creates the VM stopped when there are any', () => {
    const f = {
      ...EMPTY_FORM,
      name: 'a',
      nic_rx: { value: '10', unit: 'MB/s' as const },
      entropy: true,
      balloon: true,
      serial: true,
      logger: true,
      vsock: true,
      mmds: true,
      mmds_data: '{"a":1}',
    };
    expect(deviceSteps(f, { network: true }).map((s) => s.what)).toEqual([
      'NIC rate limits',
      'entropy device',
      'balloon',
      'serial output file',
      'VMM logger',
      'vsock',
      'MMDS config',
      'MMDS data',
    ]);
    expect(toRequest(f).start).toBe(false);
  });

  it('validates advanced fields like the API does, keyed by wizard field', () => {
    const e = validateDevices(
      {
        ...EMPTY_DEVICES,
        vsock: true,
        vsock_cid: '2',
        balloon: true,
        balloon_mib: '256',
        serial: true,
        serial_file: '../etc/passwd',
        mmds: true,
        mmds_data: '[1,2]',
        nic_tx: { value: 'x', unit: 'MB/s' },
      },
      { memMib: 256, network: true },
    );
    expect(Object.keys(e).sort()).toEqual(['balloon_mib', 'mmds_data', 'nic_tx', 'serial_file', 'vsock_cid']);
    expect(validateDevices({ ...EMPTY_DEVICES, mmds: true }, { memMib: 256, network: false }).mmds_version).toMatch(
      /network/,
    );
  });

  it('puts a given MAC in the request only in "given" mode and checks it', () => {
    const f = { ...EMPTY_FORM, name: 'a', mac: '02:00:00:00:00:09' };
    expect(toRequest(f).mac).toBeUndefined();
    expect(toRequest({ ...f, mac_mode: 'given' }).mac).toBe('02:00:00:00:00:09');
    expect(validate({ ...f, mac_mode: 'given', mac: 'AA:BB' }).mac).toMatch(/MAC/);
  });

  it('maps an API error of a device request onto the wizard field it names', () => {
    const balloon = { what: 'balloon', field: 'balloon_mib', fields: { stats_polling_interval_s: 'balloon_stats_s' } };
    expect(stepErrors(balloon, problem('body.stats_polling_interval_s', 'too long'))).toEqual({
      balloon_stats_s: 'balloon: too long',
    });
    const logger = { what: 'VMM logger', field: 'logger_level', fields: {} };
    expect(stepErrors(logger, problem('body.level', 'QEMU cannot log at level Debug'))).toEqual({
      logger_level: 'VMM logger: QEMU cannot log at level Debug',
    });
    expect(stepErrors(logger, new Error('network down'))).toEqual({ logger_level: 'VMM logger: network down' });
  });
});
