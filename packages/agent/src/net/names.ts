import { createHash, randomBytes } from 'node:crypto';
import { InvalidNetInput } from './errors.ts';

/** Linux IFNAMSIZ is 16 including the NUL. */
export const MAX_IFNAME = 15;

// A leading letter keeps names from being read as options by ip/tc; no spaces, slashes or shell metacharacters.
const IFNAME = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;
const TAP = /^nqt[a-z0-9-]{1,12}$/;
const PREFIX = /^[a-z][a-z0-9-]{0,14}$/;
const NETNS = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IPV4 = /^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$/;

function check(kind: 'bridge' | 'interface', name: unknown): string {
  if (typeof name !== 'string' || !IFNAME.test(name)) {
    throw new InvalidNetInput(kind, name, 'must be 1-15 of [A-Za-z0-9_.-] starting with a letter');
  }
  return name;
}

/** Bridges may be operator-named (FC_BRIDGE), so any plain interface name is accepted. */
export function assertBridgeName(name: unknown): string {
  return check('bridge', name);
}

/** Uplinks and other existing host interfaces (eth0, enp3s0, bond0.100). */
export function assertInterfaceName(name: unknown): string {
  return check('interface', name);
}

/** TAPs the agent manages are always `nqt…`, so listing and cleanup can never touch foreign devices. */
export function assertTapName(name: unknown): string {
  if (typeof name !== 'string' || !TAP.test(name)) {
    throw new InvalidNetInput('tap', name, 'must match nqt[a-z0-9-]{1,12}');
  }
  return name;
}

export function assertNetnsName(name: unknown): string {
  if (typeof name !== 'string' || !NETNS.test(name)) {
    throw new InvalidNetInput('netns', name, 'must be 1-64 of [A-Za-z0-9_.-] starting with a letter or digit');
  }
  return name;
}

export function assertNamePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new InvalidNetInput('prefix', prefix, 'must be 1-15 of [a-z0-9-] starting with a letter');
  }
  return prefix;
}

export function assertMtu(mtu: unknown): number {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new InvalidNetInput('mtu', mtu, 'must be an integer in 68..65535');
  }
  return mtu;
}

/**
 * `nqt-<8 hex>-<index>`: the hex is a hash of the VM id, because time-ordered ids (UUIDv7) share their
 * leading digits and a prefix would collide between VMs created in the same minute.
 */
export function tapNameFor(vmId: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 99) {
    throw new InvalidNetInput('tap', index, 'NIC index must be an integer in 0..99');
  }
  const short = createHash('sha256').update(vmId).digest('hex').slice(0, 8);
  return assertTapName(`nqt-${short}-${index}`);
}

/** The IFB device that shapes a TAP's ingress (guest tx) is named after it: nqt… → nqi…. */
export function ifbNameForTap(tap: string): string {
  return `nqi${assertTapName(tap).slice(3)}`;
}

export type RandomSource = (bytes: number) => Uint8Array;

/** A locally administered unicast MAC (first octet: bit 1 set, bit 0 clear). */
export function generateMac(random: RandomSource = randomBytes): string {
  const bytes = random(6);
  if (bytes.length < 6) throw new Error('random source returned fewer than 6 bytes');
  const octets = Array.from(bytes.subarray(0, 6));
  octets[0] = ((octets[0] ?? 0) & 0xfc) | 0x02;
  return octets.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Returns the MAC in lower case; refuses multicast and globally administered (vendor) addresses. */
export function assertMac(mac: unknown): string {
  const lower = typeof mac === 'string' ? mac.toLowerCase() : '';
  if (!MAC.test(lower)) throw new InvalidNetInput('mac', mac, 'must be six hex octets separated by colons');
  const first = Number.parseInt(lower.slice(0, 2), 16);
  if (first & 0x01) throw new InvalidNetInput('mac', mac, 'is a multicast address');
  if (!(first & 0x02)) throw new InvalidNetInput('mac', mac, 'is not locally administered');
  return lower;
}

/** Dotted quad to an unsigned 32-bit number; no leading zeros (they read as octal in some tools). */
export function parseIpv4(ip: unknown): number {
  const m = typeof ip === 'string' ? IPV4.exec(ip) : null;
  if (!m) throw new InvalidNetInput('ipv4', ip, 'must be a dotted quad');
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) throw new InvalidNetInput('ipv4', ip, 'octet above 255');
    n = n * 256 + octet;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Ipv4Cidr {
  /** The address as written (may be a host address, e.g. the bridge's 10.213.0.1/24). */
  address: string;
  prefix: number;
  netmask: string;
  network: string;
  broadcast: string;
  /** First and last usable host addresses (for /31 and /32, every address is usable). */
  firstHost: string;
  lastHost: string;
  hostCount: number;
  /** `network/prefix`, the canonical form. */
  cidr: string;
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(cidr: unknown): Ipv4Cidr {
  if (typeof cidr !== 'string') throw new InvalidNetInput('cidr', cidr, 'must be a string a.b.c.d/n');
  const [addr, len, ...rest] = cidr.split('/');
  if (rest.length > 0 || len === undefined || !/^(0|[1-9][0-9]?)$/.test(len) || Number(len) > 32) {
    throw new InvalidNetInput('cidr', cidr, 'must be a.b.c.d/n with n in 0..32');
  }
  const prefix = Number(len);
  const ip = parseIpv4(addr);
  const mask = maskOf(prefix);
  const network = (ip & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  const size = 2 ** (32 - prefix);
  const small = prefix >= 31;
  return {
    address: formatIpv4(ip),
    prefix,
    netmask: formatIpv4(mask),
    network: formatIpv4(network),
    broadcast: formatIpv4(broadcast),
    firstHost: formatIpv4(small ? network : network + 1),
    lastHost: formatIpv4(small ? broadcast : broadcast - 1),
    hostCount: small ? size : size - 2,
    cidr: `${formatIpv4(network)}/${prefix}`,
  };
}

export function cidrContains(cidr: string | Ipv4Cidr, ip: string): boolean {
  const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  const mask = maskOf(c.prefix);
  return (parseIpv4(ip) & mask) >>> 0 === parseIpv4(c.network);
}

/** An interface address such as `10.213.0.1/24`: a usable host of its network, not the network or broadcast. */
export function assertInterfaceCidr(cidr: unknown): Ipv4Cidr {
  const c = parseCidr(cidr);
  if (c.prefix < 31 && (c.address === c.network || c.address === c.broadcast)) {
    throw new InvalidNetInput('cidr', cidr, 'is the network or broadcast address, not a host address');
  }
  return c;
}
