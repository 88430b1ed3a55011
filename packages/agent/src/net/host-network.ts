import type { CommandRunner } from '../host/exec.ts';
import { type BridgeInfo, type BridgeSpec, bridgeExists, deleteBridge, ensureBridge } from './bridge.ts';
import { NetCommands } from './commands.ts';
import { InvalidNetInput } from './errors.ts';
import { assertTapName } from './names.ts';
import { disableNat, enableNat, type NatRule, type NatSpec, natRules } from './nat.ts';
import {
  addTap,
  attachTap,
  createTap,
  deleteTap,
  listTaps,
  makeTaps,
  type TapCounters,
  type TapInfo,
  type TapSpec,
  tapCounters,
  tapInfo,
} from './tap.ts';
import { type AppliedNicLimits, applyNicLimits, clearNicLimits, type NicLimits, readNicLimits } from './tc.ts';

export interface HostNetworkOptions {
  runner: CommandRunner;
  /** Network namespace to work in; absent = the agent's own (the root namespace in production). */
  netns?: string;
}

/** The agent's host networking: bridges, NAT, TAPs and their tc limits, all via `ip`/`tc`/`nft` argv. */
export class HostNetwork {
  private readonly net: NetCommands;
  /** Bridges this agent made sure of, by name, with the spec they were made for: later TAPs skip the check. */
  private readonly bridges = new Map<
    string,
    { address: BridgeSpec['address']; mtu: BridgeSpec['mtu']; ensured: Promise<BridgeInfo> }
  >();

  constructor(opts: HostNetworkOptions) {
    this.net = new NetCommands(opts.runner, opts.netns);
  }

  get netns(): string | undefined {
    return this.net.netns;
  }

  ensureBridge(spec: BridgeSpec): Promise<BridgeInfo> {
    return ensureBridge(this.net, spec);
  }

  bridgeExists(name: string): Promise<boolean> {
    return bridgeExists(this.net, name);
  }

  deleteBridge(name: string): Promise<void> {
    this.bridges.delete(name);
    return deleteBridge(this.net, name);
  }

  /**
   * A VM's TAP on its bridge, as cheaply as possible: the bridge is checked once per agent and the TAP made in one
   * `ip` run. If that fails (the bridge was removed behind our back, a leftover TAP), it converges the slow way.
   */
  async plugTap(tap: TapSpec, bridge: BridgeSpec): Promise<void> {
    await this.bridgeFor(tap, bridge);
    try {
      await addTap(this.net, tap);
    } catch (e) {
      if (e instanceof InvalidNetInput) throw e;
      this.bridges.delete(bridge.name);
      await this.ensureBridge(bridge);
      await this.createTap(tap);
    }
  }

  /** Fresh TAPs for a VMM to open (owned by its user), not yet on a bridge: `attachTap` plugs each once guarded. */
  makeTaps(taps: readonly TapSpec[]): Promise<void> {
    return makeTaps(this.net, taps);
  }

  /**
   * A TAP the VMM created, onto its (checked once) bridge and up; nothing is created here. If that fails (the bridge
   * was removed behind our back), the bridge is made sure of again and the TAP attached once more.
   */
  async attachTap(tap: TapSpec, bridge: BridgeSpec): Promise<void> {
    await this.bridgeFor(tap, bridge);
    try {
      await attachTap(this.net, tap);
    } catch (e) {
      if (e instanceof InvalidNetInput) throw e;
      this.bridges.delete(bridge.name);
      await this.bridgeFor(tap, bridge);
      await attachTap(this.net, tap);
    }
  }

  /** Makes sure of the TAP's bridge once per agent (again when its address or MTU changes). */
  private async bridgeFor(tap: TapSpec, bridge: BridgeSpec): Promise<void> {
    if (tap.bridge !== bridge.name) throw new Error(`TAP ${tap.name} is meant for ${tap.bridge}, not ${bridge.name}`);
    let memo = this.bridges.get(bridge.name);
    if (!memo || memo.address !== bridge.address || memo.mtu !== bridge.mtu) {
      const ensured = this.ensureBridge(bridge);
      const made = { address: bridge.address, mtu: bridge.mtu, ensured };
      this.bridges.set(bridge.name, made);
      ensured.catch(() => {
        if (this.bridges.get(bridge.name) === made) this.bridges.delete(bridge.name);
      });
      memo = made;
    }
    await memo.ensured;
  }

  enableNat(spec: NatSpec): Promise<void> {
    return enableNat(this.net, spec);
  }

  disableNat(bridge: string): Promise<void> {
    return disableNat(this.net, bridge);
  }

  natRules(): Promise<NatRule[]> {
    return natRules(this.net);
  }

  createTap(spec: TapSpec): Promise<TapInfo> {
    return createTap(this.net, spec);
  }

  /** Removes the TAP and its IFB shaper; nothing of it is left behind. */
  async deleteTap(name: string): Promise<void> {
    assertTapName(name);
    for (let pass = 0; ; pass++) {
      try {
        await clearNicLimits(this.net, name);
        await deleteTap(this.net, name);
        return;
      } catch (e) {
        // A TAP its VMM made disappears with the VMM, possibly between two commands here: once it is gone, one
        // more pass removes what is left (the IFB).
        if (pass > 0 || (await this.net.link(name)) !== null) throw e;
      }
    }
  }

  tapInfo(name: string): Promise<TapInfo | null> {
    return tapInfo(this.net, name);
  }

  listTaps(prefix?: string): Promise<TapInfo[]> {
    return listTaps(this.net, prefix);
  }

  tapCounters(name: string): Promise<TapCounters> {
    return tapCounters(this.net, name);
  }

  applyNicLimits(tap: string, limits: NicLimits): Promise<void> {
    return applyNicLimits(this.net, tap, limits);
  }

  clearNicLimits(tap: string): Promise<void> {
    return clearNicLimits(this.net, tap);
  }

  readNicLimits(tap: string): Promise<AppliedNicLimits> {
    return readNicLimits(this.net, tap);
  }
}
