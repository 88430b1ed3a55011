import type { AgentVmSpec } from '@nqvm/api';
import type { Logger } from 'pino';
import { type HostNetwork, tapNameFor } from '../net/index.ts';
import type { VmmUser } from '../vmm/confine.ts';
import { bridgeAddress } from './boot-plan.ts';
import type { VmHooks } from './vms.service.ts';

export interface VmNicsDeps {
  network: HostNetwork;
  hooks?: VmHooks;
  guestEndpoint(address: string): Promise<unknown>;
  log: Logger;
}

/** A VM's TAP names, one per NIC, in NIC order. */
export function tapsOf(spec: AgentVmSpec): string[] {
  return spec.nics.map((_, i) => tapNameFor(spec.vm_id, i));
}

/** A VM's TAPs: owned by its VMM's user, guarded, shaped and on their bridges. */
export class VmNics {
  constructor(private readonly d: VmNicsDeps) {}

  /**
   * The VM's TAPs on their bridges, guarded, with their limits. `new`: the TAPs are made here, before the VMM
   * starts. `made`: they exist already (see `make`) and the guest may already run, so each TAP joins its bridge only
   * once its guard and limits are in place: until then it carries nothing.
   */
  async plug(spec: AgentVmSpec, taps: 'new' | 'made', owner: VmmUser): Promise<string[]> {
    const names = tapsOf(spec);
    const guarded = Promise.resolve(this.d.hooks?.nicsPlanned?.(spec, names));
    const plug = async () => {
      for (const [i, nic] of spec.nics.entries()) {
        const tap = names[i]!;
        const limits =
          spec.vmm === 'qemu' && (nic.rx_rate_limiter || nic.tx_rate_limiter)
            ? { rx: nic.rx_rate_limiter ?? null, tx: nic.tx_rate_limiter ?? null }
            : undefined;
        const tapSpec = { name: tap, bridge: nic.bridge, owner };
        const bridge = { name: nic.bridge, address: bridgeAddress(nic) };
        // Bridge setup is idempotent under concurrency, so boots on one bridge need no lock of their own.
        if (taps === 'new') {
          await this.d.network.plugTap(tapSpec, bridge);
          if (limits) await this.d.network.applyNicLimits(tap, limits);
        } else {
          await guarded;
          if (limits) await this.d.network.applyNicLimits(tap, limits);
          await this.d.network.attachTap(tapSpec, bridge);
        }
        await this.d
          .guestEndpoint(nic.gateway)
          .catch((err) => this.d.log.warn({ err, bridge: nic.bridge }, 'guest endpoint unavailable on this bridge'));
      }
    };
    await Promise.all([plug(), guarded]);
    return names;
  }

  /**
   * Bare TAPs for the VMM to open, owned by its user, on no bridge (`plug(…, 'made')` bridges them): one `ip` run.
   * Leftovers of an earlier run of this VM (same names) are removed first when they are in the way.
   */
  async make(spec: AgentVmSpec, owner: VmmUser): Promise<string[]> {
    const names = tapsOf(spec);
    const specs = names.map((name, i) => ({ name, bridge: spec.nics[i]!.bridge, owner }));
    await this.d.network.makeTaps(specs).catch(async () => {
      for (const tap of names) await this.d.network.deleteTap(tap);
      await this.d.network.makeTaps(specs);
    });
    return names;
  }

  async unplug(id: string, nicCount: number): Promise<void> {
    for (let i = 0; i < Math.max(nicCount, 1); i++) await this.d.network.deleteTap(tapNameFor(id, i));
  }
}
