import { type IpLink, type NetCommands, parseJsonArray } from './commands.ts';
import { NetConflict } from './errors.ts';
import { assertBridgeName, assertInterfaceCidr, assertMtu } from './names.ts';

export interface BridgeSpec {
  name: string;
  /** The bridge's own address, a host of the managed network, e.g. `10.213.0.1/24`. */
  address: string;
  mtu?: number;
}

export interface BridgeInfo {
  name: string;
  up: boolean;
  mtu: number;
  addresses: string[];
}

// What `ip` says when a concurrent caller got there first: `link add` of an existing bridge, and `addr add` of
// an address the bridge already has (older iproute2: "File exists", newer: "Address already assigned").
const ALREADY_DONE = /File exists|Address already assigned/i;

/** The bridge as it stands, from one `ip` call, when it already is what `spec` asks for; else null. */
async function readyBridge(net: NetCommands, name: string, want: string, mtu?: number): Promise<BridgeInfo | null> {
  const res = await net.ipTry(['-j', '-d', '-4', 'addr', 'show', 'dev', name]);
  if (res.code !== 0) return null;
  const link = parseJsonArray<IpLink>(res.stdout)[0];
  if (link?.linkinfo?.info_kind !== 'bridge' || !link.flags?.includes('UP')) return null;
  if (mtu !== undefined && link.mtu !== mtu) return null;
  const addresses = (link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
  return addresses.includes(want) ? { name, up: true, mtu: link.mtu ?? 0, addresses } : null;
}

/**
 * Creates the bridge if missing, adds the address if missing, sets it up. Idempotent and safe to call
 * concurrently: a bridge that is already right costs one `ip` call, and losing a creation race is success.
 */
export async function ensureBridge(net: NetCommands, spec: BridgeSpec): Promise<BridgeInfo> {
  const name = assertBridgeName(spec.name);
  const addr = assertInterfaceCidr(spec.address);
  const mtu = spec.mtu === undefined ? undefined : assertMtu(spec.mtu);
  const want = `${addr.address}/${addr.prefix}`;
  const ready = await readyBridge(net, name, want, mtu);
  if (ready) return ready;
  let link = await net.link(name);
  if (link && link.linkinfo?.info_kind !== 'bridge') {
    throw new NetConflict(name, 'bridge', link.linkinfo?.info_kind ?? '');
  }
  if (!link) {
    // Another caller may have created it between our look and our add.
    await net.ipTolerating(['link', 'add', 'name', name, 'type', 'bridge'], ALREADY_DONE);
    link = await net.link(name);
    if (link && link.linkinfo?.info_kind !== 'bridge') {
      throw new NetConflict(name, 'bridge', link.linkinfo?.info_kind ?? '');
    }
  }
  if (mtu !== undefined) await net.ip(['link', 'set', 'dev', name, 'mtu', String(mtu)]);
  const existing = await bridgeAddresses(net, name);
  if (!existing.includes(want)) await net.ipTolerating(['addr', 'add', want, 'dev', name], ALREADY_DONE);
  await net.ip(['link', 'set', 'dev', name, 'up']);
  link = await net.link(name);
  return {
    name,
    up: link?.flags?.includes('UP') ?? false,
    mtu: link?.mtu ?? 0,
    addresses: await bridgeAddresses(net, name),
  };
}

export async function bridgeExists(net: NetCommands, name: string): Promise<boolean> {
  const link = await net.link(assertBridgeName(name));
  return link?.linkinfo?.info_kind === 'bridge';
}

/** Removes the bridge (its ports are detached by the kernel); a missing bridge is not an error. */
export async function deleteBridge(net: NetCommands, name: string): Promise<void> {
  const link = await net.link(assertBridgeName(name));
  if (!link) return;
  if (link.linkinfo?.info_kind !== 'bridge') throw new NetConflict(name, 'bridge', link.linkinfo?.info_kind ?? '');
  await net.ip(['link', 'del', 'dev', name]);
}

async function bridgeAddresses(net: NetCommands, name: string): Promise<string[]> {
  const out = await net.ip(['-j', '-4', 'addr', 'show', 'dev', name]);
  const parsed = JSON.parse(out.trim() || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[];
  return (parsed[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}
