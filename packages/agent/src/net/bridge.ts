import type { NetCommands } from './commands.ts';
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

/** Creates the bridge if missing, adds the address if missing, sets it up. Safe to call repeatedly. */
export async function ensureBridge(net: NetCommands, spec: BridgeSpec): Promise<BridgeInfo> {
  const name = assertBridgeName(spec.name);
  const addr = assertInterfaceCidr(spec.address);
  const mtu = spec.mtu === undefined ? undefined : assertMtu(spec.mtu);
  let link = await net.link(name);
  if (link && link.linkinfo?.info_kind !== 'bridge') {
    throw new NetConflict(name, 'bridge', link.linkinfo?.info_kind ?? '');
  }
  if (!link) {
    // Another caller may have created it between our look and our add.
    await net.ipTolerating(['link', 'add', 'name', name, 'type', 'bridge'], /File exists/i);
  }
  if (mtu !== undefined) await net.ip(['link', 'set', 'dev', name, 'mtu', String(mtu)]);
  const want = `${addr.address}/${addr.prefix}`;
  const existing = await bridgeAddresses(net, name);
  if (!existing.includes(want)) await net.ipTolerating(['addr', 'add', want, 'dev', name], /File exists/i);
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
