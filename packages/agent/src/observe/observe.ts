import type { FastifyInstance } from 'fastify';
import { ConsoleHubs, consoleRoutes } from '../console/index.ts';
import type { GuestEndpoints } from '../guest/server.ts';
import { MetricsHub, metricsRoutes, systemSamplerIo, VmMetricsSampler } from '../metrics/index.ts';
import { type HostNetwork, tapNameFor } from '../net/index.ts';
import { vmFiles } from '../vms/layout.ts';
import type { VmService } from '../vms/vms.service.ts';

export interface ObserveDeps {
  dataDir: string;
  vms: VmService;
  guest: GuestEndpoints;
  network: HostNetwork;
  onError(vmId: string, err: unknown): void;
}

/** The serial console hub and the live metrics sampler of this host's VMs, wired to the VM service. */
export class Observe {
  readonly consoles: ConsoleHubs;
  readonly metrics: MetricsHub;
  private readonly sampler: VmMetricsSampler;

  constructor(private readonly d: ObserveDeps) {
    this.consoles = new ConsoleHubs((id) => (this.exists(id) ? vmFiles(d.dataDir, id) : undefined), {
      applySize: (id, size) => d.guest.setConsoleSize(id, size),
    });
    this.sampler = new VmMetricsSampler(systemSamplerIo({ tapCounters: (tap) => d.network.tapCounters(tap) }));
    this.metrics = new MetricsHub(this.sampler, (id) => this.observed(id), 1000, d.onError);
  }

  private exists(id: string): boolean {
    try {
      this.d.vms.get(id);
      return true;
    } catch {
      return false;
    }
  }

  private async observed(id: string) {
    // Sampled every second per VM: status and spec come from the VM service's memory, not spec.json.
    const spec = this.d.vms.specOf(id);
    if (!spec) return undefined;
    const status = this.d.vms.get(id);
    return {
      vmm: spec.vmm,
      pid: status.state === 'stopped' ? undefined : (status.pid ?? undefined),
      controlSocket: vmFiles(this.d.dataDir, id).controlSocket,
      taps: spec.nics.map((_, i) => tapNameFor(id, i)),
      guestIp: this.d.guest.lastReports.get(id)?.report.ip ?? spec.nics[0]?.ip.split('/')[0],
      guestAgent: spec.guest.install_agent,
    };
  }

  /** Mounted inside the agent API's authenticated scope: the host-secret check has already run. */
  routes(api: FastifyInstance): void {
    const authorize = async () => {};
    const exists = (id: string) => this.exists(id);
    api.register(consoleRoutes, { hubs: this.consoles, authorize, exists });
    api.register(metricsRoutes, { hub: this.metrics, authorize, exists });
  }

  forget(id: string): void {
    this.sampler.forget(id);
  }

  close(): void {
    this.consoles.closeAll();
    this.metrics.closeAll();
  }
}
