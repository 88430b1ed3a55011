import type { IpLink, NetCommands } from './commands.ts';
import { NetConflict } from './errors.ts';
import { assertBridgeName, assertMtu, assertNamePrefix, assertTapName } from './names.ts';

export interface TapSpec {
  name: string;
  bridge: string;
  mtu?: number;
  /** The unprivileged user (its VMM) that may attach to the TAP without any capability. */
  owner?: { uid: number; gid: number };
}

function tuntapAdd(name: string, owner: TapSpec['owner']): string[] {
  const who = owner ? ['user', String(owner.uid), 'group', String(owner.gid)] : [];
  if (owner && (!Number.isInteger(owner.uid) || !Number.isInteger(owner.gid) || owner.uid < 1 || owner.gid < 1))
    throw new RangeError(`not an unprivileged owner: ${owner.uid}:${owner.gid}`);
  return ['tuntap', 'add', 'dev', name, 'mode', 'tap', ...who];
}

export interface TapInfo {
  name: string;
  /** The bridge it is attached to, if any. */
  bridge: string | null;
  /** Administratively up; the carrier stays down until a VMM opens the TAP. */
  up: boolean;
  mtu: number;
  mac: string;
}

/**
 * Byte and packet counters as the host sees the TAP. Host rx is what the guest sent (guest tx) and
 * host tx is what the guest was sent (guest rx).
 */
export interface TapCounters {
  rxBytes: number;
  rxPackets: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txDropped: number;
}

function isTap(link: IpLink): boolean {
  return link.linkinfo?.info_kind === 'tun' && link.linkinfo.info_data?.type === 'tap';
}

function toInfo(link: IpLink): TapInfo {
  return {
    name: link.ifname,
    bridge: link.master ?? null,
    up: link.flags?.includes('UP') ?? false,
    mtu: link.mtu ?? 0,
    mac: link.address ?? '',
  };
}

/** Creates a persistent TAP, attaches it to the bridge and sets it up; converges an existing one. */
export async function createTap(net: NetCommands, spec: TapSpec): Promise<TapInfo> {
  const name = assertTapName(spec.name);
  const bridge = assertBridgeName(spec.bridge);
  const mtu = spec.mtu === undefined ? undefined : assertMtu(spec.mtu);
  const existing = await net.link(name);
  if (existing && !isTap(existing)) throw new NetConflict(name, 'tap', existing.linkinfo?.info_kind ?? '');
  if (!existing) await net.ip(tuntapAdd(name, spec.owner));
  // One `ip link set` for mtu, port and state: each `ip` run costs tens of milliseconds on a busy host.
  await net.ip([
    'link',
    'set',
    'dev',
    name,
    ...(mtu === undefined ? [] : ['mtu', String(mtu)]),
    'master',
    bridge,
    'up',
  ]);
  const link = await net.link(name);
  if (!link) throw new Error(`TAP ${name} vanished right after creation`);
  return toInfo(link);
}

/**
 * The fast path of createTap for a fresh name: one `ip -batch` run creates the TAP, puts it on the bridge and
 * sets it up. It reports nothing back; on any failure the caller converges with createTap instead.
 */
export async function addTap(net: NetCommands, spec: TapSpec): Promise<void> {
  const name = assertTapName(spec.name);
  const bridge = assertBridgeName(spec.bridge);
  const mtu = spec.mtu === undefined ? [] : ['mtu', String(assertMtu(spec.mtu))];
  const lines = [tuntapAdd(name, spec.owner), ['link', 'set', 'dev', name, ...mtu, 'master', bridge, 'up']];
  await net.ip(['-batch', '-'], { input: `${lines.map((l) => l.join(' ')).join('\n')}\n` });
}

/** Creates fresh TAPs, off any bridge and down, in one `ip -batch` run (a VMM attaches, then `attachTap` plugs them). */
export async function makeTaps(net: NetCommands, specs: readonly TapSpec[]): Promise<void> {
  if (specs.length === 0) return;
  const lines = specs.map((s) => tuntapAdd(assertTapName(s.name), s.owner));
  await net.ip(['-batch', '-'], { input: `${lines.map((l) => l.join(' ')).join('\n')}\n` });
}

/**
 * Puts a TAP that already exists (QEMU makes its own when started as root) on its bridge and sets it up: one `ip`
 * run. On failure the link is looked at, to say whether it is missing or not a TAP.
 */
export async function attachTap(net: NetCommands, spec: TapSpec): Promise<void> {
  const name = assertTapName(spec.name);
  const bridge = assertBridgeName(spec.bridge);
  const mtu = spec.mtu === undefined ? [] : ['mtu', String(assertMtu(spec.mtu))];
  try {
    await net.ip(['link', 'set', 'dev', name, ...mtu, 'master', bridge, 'up']);
  } catch (e) {
    const link = await net.link(name);
    if (!link) throw new Error(`TAP ${name} does not exist: the VMM did not create it`);
    if (!isTap(link)) throw new NetConflict(name, 'tap', link.linkinfo?.info_kind ?? '');
    throw e;
  }
}

/** Deletes the TAP; a missing TAP is not an error. Callers also clear its IFB (see HostNetwork.deleteTap). */
export async function deleteTap(net: NetCommands, name: string): Promise<void> {
  const link = await net.link(assertTapName(name));
  if (!link) return;
  if (!isTap(link)) throw new NetConflict(name, 'tap', link.linkinfo?.info_kind ?? '');
  await net.ip(['link', 'del', 'dev', name]);
}

export async function tapInfo(net: NetCommands, name: string): Promise<TapInfo | null> {
  const link = await net.link(assertTapName(name));
  return link && isTap(link) ? toInfo(link) : null;
}

/** TAP devices whose name starts with `prefix` (e.g. `nqt-` for all of nqvm's, `nqt-1a2b3c4d-` for one VM). */
export async function listTaps(net: NetCommands, prefix = 'nqt'): Promise<TapInfo[]> {
  const p = assertNamePrefix(prefix);
  return (await net.links())
    .filter((l) => isTap(l) && l.ifname.startsWith(p))
    .map(toInfo)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export async function tapCounters(net: NetCommands, name: string): Promise<TapCounters> {
  const link = await net.link(assertTapName(name));
  if (!link || !isTap(link)) throw new Error(`TAP ${name} does not exist`);
  const rx = link.stats64?.rx ?? {};
  const tx = link.stats64?.tx ?? {};
  return {
    rxBytes: rx.bytes ?? 0,
    rxPackets: rx.packets ?? 0,
    rxDropped: rx.dropped ?? 0,
    txBytes: tx.bytes ?? 0,
    txPackets: tx.packets ?? 0,
    txDropped: tx.dropped ?? 0,
  };
}
