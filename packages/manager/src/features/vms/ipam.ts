import { randomBytes } from 'node:crypto';

export interface Cidr {
  network: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`bad IPv4 ${ip}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): Cidr {
  const [ip, p] = cidr.split('/');
  const prefix = Number(p);
  if (!ip || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new Error(`bad CIDR ${cidr}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (ipToInt(ip) & mask) >>> 0, prefix };
}

export function netmask(prefix: number): string {
  return intToIp((0xffffffff << (32 - prefix)) >>> 0);
}

/** The lowest free host address of the network, skipping the gateway and anything in use. */
export function firstFreeIp(cidr: Cidr, gateway: string, used: Set<string>): string | null {
  const size = 2 ** (32 - cidr.prefix);
  const gw = ipToInt(gateway);
  for (let i = 2; i < size - 1; i++) {
    const n = cidr.network + i;
    if (n === gw) continue;
    const ip = intToIp(n);
    if (!used.has(ip)) return ip;
  }
  return null;
}

/** A random locally administered unicast MAC (02:xx:…); uniqueness is enforced by the database. */
export function randomMac(random: (n: number) => Buffer = randomBytes): string {
  const b = random(5);
  return ['02', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}
