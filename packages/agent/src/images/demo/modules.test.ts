import { describe, expect, test } from 'vitest';
import { parseKernelDependency } from './build.js';
import { type KernelModule, moduleLoadOrder, modulesDep, parseModinfoDepends } from './modules.js';

const mod = (name: string, depends: string[] = [], dir = 'drivers/virtio'): [string, KernelModule] => [
  name,
  { name, relPath: `kernel/${dir}/${name}.ko`, depends },
];

const index = new Map<string, KernelModule>([
  mod('virtio_ring'),
  mod('virtio', ['virtio_ring']),
  mod('virtio_mmio', ['virtio', 'virtio_ring']),
  mod('failover', [], 'net/core'),
  mod('net_failover', ['failover'], 'drivers/net'),
  mod('virtio_net', ['net_failover', 'virtio', 'virtio_ring'], 'drivers/net'),
  mod('virtio_rng', ['virtio', 'virtio_ring'], 'drivers/char/hw_random'),
]);

describe('kernel module handling', () => {
  test('reads depends= from a module .modinfo section', () => {
    const ko = Buffer.concat([
      Buffer.from('\x7fELF junk\0license=GPL\0depends=virtio,virtio_ring,net-failover\0vermagic=6.1\0'),
    ]);
    expect(parseModinfoDepends(ko)).toEqual(['virtio', 'virtio_ring', 'net_failover']);
    expect(parseModinfoDepends(Buffer.from('\0depends=\0'))).toEqual([]);
    expect(parseModinfoDepends(Buffer.from('no modinfo'))).toEqual([]);
  });

  test('orders wanted modules after their dependencies, once each, skipping absent ones', () => {
    expect(moduleLoadOrder(['virtio_net', 'virtio-rng', 'virtio_mmio', 'not_shipped'], index)).toEqual([
      'failover',
      'net_failover',
      'virtio_ring',
      'virtio',
      'virtio_net',
      'virtio_rng',
      'virtio_mmio',
    ]);
  });

  test('fails on a dependency the package does not ship', () => {
    const broken = new Map(index);
    broken.set('x', { name: 'x', relPath: 'kernel/x.ko', depends: ['missing'] });
    expect(() => moduleLoadOrder(['x'], broken)).toThrow(/missing/);
  });

  test('writes a depmod-style modules.dep', () => {
    expect(modulesDep(['virtio_ring', 'virtio_rng'], index)).toBe(
      'kernel/drivers/virtio/virtio_ring.ko:\n' +
        'kernel/drivers/char/hw_random/virtio_rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n',
    );
  });

  test('resolves the real kernel package from the meta package Depends', () => {
    expect(parseKernelDependency('linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)')).toEqual({
      name: 'linux-image-6.1.0-56-cloud-amd64',
      version: '6.1.192-2',
    });
    expect(() => parseKernelDependency('linux-image-$(reboot)-cloud-amd64 (= 1)')).toThrow(/unexpected/);
  });
});
