import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Server as TlsServer } from 'node:tls';
import type { AgentVmSpec, HostCapabilities, VmmKind } from '@nqvm/api';
import pino, { type Logger } from 'pino';
import { buildAgentApp, featureRoutes } from './app.ts';
import type { AgentConfig } from './config.ts';
import { GuestEndpoints } from './guest/server.ts';
import { type CommandRunner, systemRunner } from './host/exec.ts';
import { ImageCache } from './images/cache.ts';
import { VmLogs } from './logs/vm-logs.ts';
import { ManagerCallFailed, ManagerClient } from './manager/client.ts';
import { hostCapabilities, hostCapacity } from './manager/host-info.ts';
import { loadIdentity, saveIdentity } from './manager/identity.ts';
import { agentKey, loadAgentTls, saveAgentTls } from './manager/tls.ts';
import { AgentMetrics } from './metrics/prometheus.ts';
import { MmdsService } from './mmds/mmds.service.ts';
import { HostNetwork, tapNameFor } from './net/index.ts';
import { TapGuard } from './net/tap-guard.ts';
import { Observe } from './observe/observe.ts';
import { SnapshotService } from './snapshots/snapshots.service.ts';
import { FirecrackerDriver } from './vmm/firecracker/index.ts';
import { QemuDriver } from './vmm/qemu/index.ts';
import type { VmmDriver } from './vmm/types.ts';
import { GuestTools } from './vms/guest-tools.ts';
import { vmFiles } from './vms/layout.ts';
import { VmService } from './vms/vms.service.ts';

export interface StartAgentOptions {
  logger?: Logger;
  runner?: CommandRunner;
  /** Replaces the drivers built from the config (tests pass a QEMU driver with options of their own). */
  drivers?: VmmDriver[];
}

export interface RunningAgent {
  hostId: string;
  /** The agent API's base URL, as registered with the manager. */
  url: string;
  vms: VmService;
  guest: GuestEndpoints;
  /** Lets guests open connections to one more service on the host (the input policy drops all others). */
  allowGuestService(address: string, port: number): Promise<void>;
  /** Stops serving and heartbeating; VMs keep running and are re-adopted by the next agent. */
  close(): Promise<void>;
}

/**
 * The guard's nft tables are rewritten whole from the agent's memory, so two agents in one network namespace (tests,
 * or a second agent on another data dir) must not share them: the default data dir keeps the plain name.
 */
function guardTable(dataDir: string): string {
  if (dataDir === '/var/lib/nqvm-agent') return 'nqvm_guard';
  return `nqvm_guard_${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}`;
}

/** The VM on this host whose NIC holds `ip`, if exactly one does (a second claimant means neither is trusted). */
function ownerOf(vms: VmService, ip: string): string | undefined {
  const owners = vms
    .list()
    .filter((v) => v.state !== 'stopped' && vms.specOf(v.id)?.nics.some((n) => n.ip.split('/')[0] === ip));
  return owners.length === 1 ? owners[0]?.id : undefined;
}

/** Starts an agent: listen, register (or reuse the saved identity), re-adopt VMs, monitor, heartbeat. */
export async function startAgent(config: AgentConfig, opts: StartAgentOptions = {}): Promise<RunningAgent> {
  const log = opts.logger ?? pino({ name: 'nqvm-agent' });
  const runner = opts.runner ?? systemRunner;
  const drivers = opts.drivers ?? [
    new QemuDriver({ runner, ...(config.qemuBin ? { binary: config.qemuBin } : {}) }),
    new FirecrackerDriver({
      runner,
      ...(config.firecrackerBin ? { binary: config.firecrackerBin } : {}),
      ...(config.pathEnv ? { pathEnv: config.pathEnv } : {}),
    }),
  ];
  const manager = new ManagerClient(config.managerBase);
  const guest = new GuestEndpoints(config.guestPort, {
    manager,
    tokenOf: (id) => vms.guestToken(id),
    addressesOf: (id) => vms.specOf(id)?.nics.map((n) => n.ip.split('/')[0] ?? '') ?? [],
    log: log.child({ component: 'guest-endpoint' }),
  });
  const guardLog = log.child({ component: 'tap-guard' });
  const tapGuard = new TapGuard(runner, {
    table: guardTable(config.dataDir),
    onRepair: (what) => guardLog.warn({ what }, 'guard rules re-applied'),
  });
  const mmds = new MmdsService({
    dataDir: config.dataDir,
    runner,
    log: log.child({ component: 'mmds' }),
    ownerOf: (ip) => ownerOf(vms, ip),
    listening: (address, port) => tapGuard.allowService(address, port),
  });
  const guardNics = async (spec: AgentVmSpec, taps: string[]) => {
    for (const [i, tap] of taps.entries()) {
      const nic = spec.nics[i];
      if (nic) await tapGuard.guard(tap, { ip: nic.ip, mac: nic.mac, bridge: nic.bridge });
    }
  };
  const vms: VmService = new VmService({
    dataDir: config.dataDir,
    drivers: new Map(drivers.map((d) => [d.kind as VmmKind, d])),
    network: new HostNetwork({ runner }),
    images: new ImageCache(join(config.dataDir, 'images'), (id) => manager.imageContent(id)),
    guestTools: new GuestTools(join(config.dataDir, 'guest-tools'), runner),
    guestPort: config.guestPort,
    guestEndpoint: async (address) => {
      await guest.ensure(address);
      await tapGuard.allowService(address, config.guestPort);
    },
    reportExit: (r) => manager.reportExit(r),
    log,
    runner,
    vmmUsers: config.vmmUsers,
    hooks: {
      nicsPlanned: guardNics,
      removed: async (id, spec) => {
        await mmds.remove(id);
        for (const i of spec?.nics.keys() ?? []) await tapGuard.unguard(tapNameFor(id, i)).catch(() => undefined);
      },
    },
  });
  const vmLogs = new VmLogs({
    list: () =>
      vms.list().flatMap((s) => {
        const spec = vms.specOf(s.id);
        const f = vmFiles(config.dataDir, s.id);
        if (!spec) return [];
        const pid = s.state === 'stopped' ? undefined : (s.pid ?? undefined);
        const maxBytes = spec.logger?.max_bytes ?? config.logMaxBytes;
        return [{ id: s.id, consoleLog: f.consoleLog, vmmLog: f.vmmLog, maxBytes, pid }];
      }),
    onError: (vmId, err) => log.warn({ err, vm_id: vmId }, 'keeping a VM log under its cap failed'),
  });
  const snapshots = new SnapshotService({ dataDir: config.dataDir, vms, runner, log, isolation: tapGuard });
  const observe = new Observe({
    dataDir: config.dataDir,
    vms,
    guest,
    network: new HostNetwork({ runner }),
    onError: (vmId, err) => log.debug({ err, vm_id: vmId }, 'metrics sample failed'),
  });

  // Set once the VMs running on this host are adopted: until then the API asks callers to come back.
  let started = false;
  manager.identity = await loadIdentity(config.dataDir);
  const app = buildAgentApp({
    vms,
    secret: () => manager.identity?.secret,
    ready: () => started,
    log,
    metrics: new AgentMetrics(vms),
    routes: featureRoutes({ snapshots, mmds, observe, functions: { vms, guest }, dataDir: config.dataDir }),
    tls: { identity: manager.identity && (await loadAgentTls(config.dataDir, manager.identity.host_id)) },
  });
  await app.listen({ host: config.bind.host, port: config.bind.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.bind.port;
  // With port 0 (tests) only the kernel knows the port, so the advertised URL is built from it.
  // Served over TLS only, so the URL is https whatever scheme AGENT_ADVERTISE_URL was given with.
  const url =
    config.bind.port === 0 ? `https://${config.bind.host}:${port}` : `https://${new URL(config.advertiseUrl).host}`;
  manager.advertisedUrl = url;

  let capabilities: HostCapabilities;
  try {
    capabilities = await hostCapabilities(drivers, runner);
    const register = async () => {
      if (!config.joinToken) throw new Error('NQVM_JOIN_TOKEN is required to register this agent with the manager');
      const id = await manager.register({
        join_token: config.joinToken,
        name: config.name,
        addr: url,
        labels: config.labels,
        capacity: await hostCapacity(config.dataDir),
        capabilities,
      });
      await saveIdentity(config.dataDir, id);
      manager.identity = id;
      log.info({ host_id: id.host_id }, 'registered with the manager');
      await renewTls();
    };
    // The manager issues the certificate for a key made here; the server takes it without a restart.
    const renewTls = async () => {
      const hostId = manager.identity?.host_id;
      if (!hostId || (await loadAgentTls(config.dataDir, hostId))) return;
      const { key, publicKey } = await agentKey(config.dataDir);
      const issued = await manager.certificate(publicKey);
      await saveAgentTls(config.dataDir, issued.certificate, issued.ca_certificate);
      (app.server as unknown as TlsServer).setSecureContext({
        key,
        cert: issued.certificate,
        ca: issued.ca_certificate,
      });
      log.info({ host_id: hostId, not_after: issued.not_after }, 'TLS certificate issued by the manager');
    };
    if (!manager.identity) await register();
    else await renewTls();
    await vms.restore();
    // Re-adopted VMs are guarded again from their specs: MACs pinned by this agent even if an older one did not.
    for (const { id } of vms.list()) {
      const spec = vms.specOf(id);
      const taps = spec?.nics.map((_, i) => tapNameFor(id, i)) ?? [];
      if (spec)
        await guardNics(spec, taps).catch((err) =>
          guardLog.warn({ err, vm_id: id }, 'could not guard a re-adopted VM'),
        );
    }
    tapGuard.start();
    vmLogs.start();
    await mmds.restore();
    vms.startMonitor();
    started = true;

    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let inflight: Promise<void> = Promise.resolve();
    const beat = async () => {
      try {
        await manager.heartbeat(await hostCapacity(config.dataDir), capabilities, vms.list());
        await renewTls();
      } catch (err) {
        if (err instanceof ManagerCallFailed && err.status === 401) {
          log.warn('the manager no longer knows this host secret: registering again');
          await register().catch((e) => log.error({ err: e }, 're-registration failed'));
        } else log.warn({ err }, 'heartbeat failed');
      }
    };
    const loop = () => {
      if (stopped) return;
      inflight = beat().finally(() => {
        if (!stopped) timer = setTimeout(loop, config.heartbeatS * 1000);
      });
    };
    const hostId = manager.identity?.host_id ?? '';
    await beat();
    timer = setTimeout(loop, config.heartbeatS * 1000);

    return {
      hostId,
      url,
      vms,
      guest,
      allowGuestService: (address, port) => tapGuard.allowService(address, port),
      async close() {
        stopped = true;
        if (timer) clearTimeout(timer);
        vms.stopMonitor();
        tapGuard.stop();
        vmLogs.close();
        observe.close();
        await inflight.catch(() => undefined);
        await vms.settle();
        await guest.close();
        await mmds.close();
        await app.close();
      },
    };
  } catch (e) {
    vms.stopMonitor();
    tapGuard.stop();
    vmLogs.close();
    await guest.close();
    await app.close();
    throw e;
  }
}
