import { agentApi } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mountRoute } from '../mount.ts';
import { AgentError } from '../vms/errors.ts';
import type { VmService } from '../vms/vms.service.ts';
import { assertDriveId } from './drives.ts';
import { balloonStats, setBalloonPolling, setBalloonSize, setDriveThrottle } from './live.ts';

const qemuOnly = (vmm: string) => {
  if (vmm !== 'qemu')
    throw new AgentError(422, 'unsupported_on_host', `live device changes are not wired for ${vmm} on this agent`);
};

/** Live device changes on running VMs (`/agent/v1/vms/:id/...`), called by the manager's devices feature. */
export function deviceRoutes(api: FastifyInstance, d: { vms: VmService }): void {
  const r = agentApi.devices;
  mountRoute(api, r.patchDrive, async (req) =>
    d.vms.live(req.params.id, async (vm) => {
      qemuOnly(vm.spec.vmm);
      const id = assertDriveId(req.params.drive_id);
      const drives = vm.spec.drives ?? [];
      const drive = drives.find((x) => x.drive_id === id);
      if (!drive) throw new AgentError(404, 'drive_not_found', `no drive ${id} on this VM`, { field: 'drive_id' });
      await setDriveThrottle(vm.handle.paths.controlSocket, id, req.body.rate_limiter);
      const { rate_limiter: _old, ...rest } = drive;
      const next = { ...rest, ...(req.body.rate_limiter ? { rate_limiter: req.body.rate_limiter } : {}) };
      await vm.save({ ...vm.spec, drives: drives.map((x) => (x === drive ? next : x)) });
      return { ok: true as const };
    }),
  );

  mountRoute(api, r.patchNic, async (req) =>
    d.vms.live(req.params.id, async (vm) => {
      qemuOnly(vm.spec.vmm);
      const i = vm.spec.nics.findIndex((n) => n.iface_id === req.params.iface_id);
      const nic = vm.spec.nics[i];
      const tap = vm.taps[i];
      if (!nic || !tap) throw new AgentError(404, 'nic_not_found', `no NIC ${req.params.iface_id} on this VM`);
      const rx = req.body.rx_rate_limiter === undefined ? (nic.rx_rate_limiter ?? null) : req.body.rx_rate_limiter;
      const tx = req.body.tx_rate_limiter === undefined ? (nic.tx_rate_limiter ?? null) : req.body.tx_rate_limiter;
      await vm.network.applyNicLimits(tap, { rx, tx });
      const { rx_rate_limiter: _r, tx_rate_limiter: _t, ...base } = nic;
      const next = { ...base, ...(rx ? { rx_rate_limiter: rx } : {}), ...(tx ? { tx_rate_limiter: tx } : {}) };
      await vm.save({ ...vm.spec, nics: vm.spec.nics.map((n) => (n === nic ? next : n)) });
      return { ok: true as const };
    }),
  );

  mountRoute(api, r.patchBalloon, async (req) =>
    d.vms.live(req.params.id, async (vm) => {
      qemuOnly(vm.spec.vmm);
      const balloon = vm.spec.balloon;
      if (!balloon) throw new AgentError(409, 'balloon_not_configured', 'this VM booted without a balloon device');
      const next = { ...balloon, ...req.body };
      if (next.amount_mib > vm.spec.mem_mib)
        throw new AgentError(422, 'invalid_balloon', 'amount_mib exceeds the VM memory', { field: 'amount_mib' });
      const socket = vm.handle.paths.controlSocket;
      if (req.body.stats_polling_interval_s !== undefined)
        await setBalloonPolling(socket, req.body.stats_polling_interval_s);
      if (req.body.amount_mib !== undefined) await setBalloonSize(socket, vm.spec.mem_mib, req.body.amount_mib);
      await vm.save({ ...vm.spec, balloon: next });
      return { ok: true as const };
    }),
  );

  mountRoute(api, r.balloonStats, async (req) =>
    d.vms.live(req.params.id, async (vm) => {
      qemuOnly(vm.spec.vmm);
      const balloon = vm.spec.balloon;
      if (!balloon) throw new AgentError(409, 'balloon_not_configured', 'this VM booted without a balloon device');
      return balloonStats(vm.handle.paths.controlSocket, vm.spec.mem_mib, balloon.amount_mib);
    }),
  );
}
