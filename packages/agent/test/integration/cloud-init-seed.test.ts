import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentVmSpec } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED_FILE, seedDrive, writeSeed } from '../../src/devices/cloud-init.ts';
import { withDevices } from '../../src/devices/drives.ts';
import { systemRunner } from '../../src/host/exec.ts';

const USER_DATA = `#cloud-config
hostname: ignored-by-nqvm-test
users:
  - name: ada
    ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKeyExampleKeyExample ada@host"]
`;

const spec = {
  vm_id: '6f1c2a52-7a6e-4c57-9d55-8b0c1f3f4a11',
  name: 'ci-guest',
  nics: [
    { iface_id: 'eth0', mac: '02:00:0a:e9:00:07', ip: '10.233.0.7/24', gateway: '10.233.0.1', bridge: 'nqbr-x' },
    { iface_id: 'eth1', mac: '02:00:0a:e9:01:08', ip: '10.233.1.8/24', gateway: '10.233.1.1', bridge: 'nqbr-y' },
  ],
  guest: {
    hostname: 'ci-guest',
    token: 't',
    install_agent: true,
    cloud_init: { user_data: USER_DATA, meta_data: { 'availability-zone': 'lab-1' } },
  },
} as unknown as AgentVmSpec;

/** A file of the ISO by its Rock Ridge name, read with isoinfo (no mount). */
const isoFile = (iso: string, name: string) =>
  execFileSync('isoinfo', ['-R', '-i', iso, '-x', `/${name}`], { encoding: 'utf8' });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nqvm-seed-'));
  await writeSeed(systemRunner, dir, spec);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('cloud-init NoCloud seed drive (genisoimage, read back with isoinfo)', () => {
  it('is an ISO 9660 volume labelled cidata with only the seed left in the VM directory', async () => {
    const iso = join(dir, SEED_FILE);
    expect(execFileSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' })).toMatch(/Volume id: cidata/);
    expect(await readdir(dir)).toEqual([SEED_FILE]);
  });

  it('carries user-data as given and meta-data with the VM id, its hostname and the extra keys', () => {
    const iso = join(dir, SEED_FILE);
    expect(isoFile(iso, 'user-data')).toBe(USER_DATA);
    expect(JSON.parse(isoFile(iso, 'meta-data'))).toEqual({
      'availability-zone': 'lab-1',
      'instance-id': spec.vm_id,
      'local-hostname': 'ci-guest',
    });
  });

  it('gives each NIC, matched by MAC, the address nqvm allocated, and the default route through eth0', () => {
    expect(JSON.parse(isoFile(join(dir, SEED_FILE), 'network-config'))).toEqual({
      version: 2,
      ethernets: {
        eth0: {
          match: { macaddress: '02:00:0a:e9:00:07' },
          'set-name': 'eth0',
          addresses: ['10.233.0.7/24'],
          routes: [{ to: '0.0.0.0/0', via: '10.233.0.1' }],
        },
        eth1: { match: { macaddress: '02:00:0a:e9:01:08' }, 'set-name': 'eth1', addresses: ['10.233.1.8/24'] },
      },
    });
  });

  it('is attached read-only after every other drive, only to VMs that have cloud-init data', () => {
    const launch = { drives: [{ drive_id: 'rootfs' }, { drive_id: 'tools' }] } as never;
    expect(withDevices(launch, spec, dir).drives.at(-1)).toEqual(seedDrive(dir));
    expect(seedDrive(dir)).toMatchObject({ drive_id: 'cidata', is_read_only: true, path: join(dir, SEED_FILE) });
    const plain = { ...spec, guest: { ...spec.guest, cloud_init: undefined } } as AgentVmSpec;
    expect(withDevices(launch, plain, dir).drives.map((d) => d.drive_id)).toEqual(['rootfs', 'tools']);
  });
});
