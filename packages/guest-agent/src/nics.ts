import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from './identity';

/** A NIC after the first: its MAC and the address the manager allocated (kernel arg `nqvm.nic=<mac>,<a.b.c.d>/<p>`). */
export interface ExtraNic {
  mac: string;
  address: string;
  prefix: number;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const NIC_ARG = new RegExp(
  `^nqvm\\.nic=([0-9a-f]{2}(?::[0-9a-f]{2}){5}),(${OCTET}(?:\\.${OCTET}){3})/([1-9]|[12]\\d|3[0-2])$`,
);

/** The extra NICs named on the kernel command line; malformed entries are ignored (they never reach argv). */
export function parseNicArgs(cmdline: string): ExtraNic[] {
  const out: ExtraNic[] = [];
  for (const word of cmdline.trim().split(/\s+/)) {
    const m = NIC_ARG.exec(word.toLowerCase());
    if (m?.[1] && m[2] && m[m.length - 1]) out.push({ mac: m[1], address: m[2], prefix: Number(m[m.length - 1]) });
  }
  return out;
}

function network(address: string, prefix: number): string {
  const n = address.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
  const mask = prefix === 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (net >>> s) & 0xff).join('.')}/${prefix}`;
}

export interface NicHost {
  exec: Exec;
  /** Directory of network interfaces (`/sys/class/net`). */
  sysNet: string;
  /** Addresses each interface holds now. */
  addresses: () => Record<string, string[]>;
  /** Writes a sysctl under /proc/sys (tests pass a stand-in). */
  sysctl: (key: string, value: string) => Promise<void>;
}

export const guestNicHost = (exec: Exec, addresses: NicHost['addresses']): NicHost => ({
  exec,
  sysNet: '/sys/class/net',
  addresses,
  sysctl: (key, value) => writeFile(join('/proc/sys', ...key.split('.')), value),
});

/**
 * Gives each extra NIC its address, found by MAC, on any init (the demo rootfs's rcS may have done it already: then
 * nothing changes). Replies from an extra address leave by its own NIC (a routing table per NIC and ARP answered
 * only on the owning NIC), since the host drops packets whose source does not belong to the TAP they came from.
 */
export async function applyExtraNics(nics: ExtraNic[], host: NicHost): Promise<string[]> {
  if (nics.length === 0) return [];
  const byMac = new Map<string, string>();
  for (const dev of await readdir(host.sysNet).catch(() => [] as string[])) {
    const mac = (await readFile(join(host.sysNet, dev, 'address'), 'utf8').catch(() => '')).trim().toLowerCase();
    if (mac) byMac.set(mac, dev);
  }
  const done: string[] = [];
  for (const [i, nic] of nics.entries()) {
    const dev = byMac.get(nic.mac);
    if (!dev || !/^[A-Za-z0-9_.-]{1,15}$/.test(dev)) throw new Error(`no network interface has MAC ${nic.mac}`);
    if (host.addresses()[dev]?.includes(nic.address)) continue;
    await host.sysctl('net.ipv4.conf.all.arp_ignore', '1');
    await host.sysctl('net.ipv4.conf.all.arp_announce', '2');
    const table = String(101 + i);
    await host.exec('ip', ['link', 'set', 'dev', dev, 'up']);
    await host.exec('ip', ['addr', 'add', `${nic.address}/${nic.prefix}`, 'dev', dev]);
    await host.exec('ip', ['route', 'replace', network(nic.address, nic.prefix), 'dev', dev, 'table', table]);
    await host.exec('ip', ['rule', 'add', 'from', nic.address, 'table', table]);
    done.push(`${dev} ${nic.address}/${nic.prefix}`);
  }
  return done;
}
