import { agentApi, type RateLimiter } from '@nqvm/api';
import { Conflict } from '../../domain/errors.ts';
import type { OperationHandler } from '../operations/operations.catalog.ts';
import type { AgentClient, AgentTarget } from '../vms/agent-client.ts';
import { classifyAgentError, ending } from '../vms/vm-operations.ts';
import type { VmStateMachine } from '../vms/vm-state-machine.ts';
import type { VmRow } from '../vms/vms.repository.ts';
import type { DevicesRepository } from './devices.repository.ts';
import type { DeviceConfig } from './devices.service.ts';

/** A change applied live on the VM's host, then stored: the `device` operation's input. */
export type LiveChange = (
  | { device: 'drive'; id: string; rate_limiter: RateLimiter | null }
  | { device: 'nic'; id: string; config: Record<string, unknown> }
  | { device: 'balloon'; patch: { amount_mib?: number; stats_polling_interval_s?: number } }
) & { action: string; detail: Record<string, unknown> };

export interface DeviceOperationDeps {
  repo: DevicesRepository;
  vms: { get(id: string): Promise<VmRow | undefined> };
  target(hostId: string): Promise<AgentTarget>;
  agent: Pick<AgentClient, 'call'>;
  machine: VmStateMachine;
}

const LIVE = ['running', 'paused'];

/**
 * Applies a device change to the running VM through its agent (QMP, tc), then stores it with its event and the
 * operation's end in one transaction. Applying the same setting twice is harmless, so a resumed change repeats it.
 */
export function deviceHandler(d: DeviceOperationDeps): OperationHandler {
  return {
    async run(ctx) {
      const op = ctx.op;
      const c = op.input as unknown as LiveChange;
      const row = await d.vms.get(op.vmId ?? '');
      if (!row) throw new Error('the VM was deleted before the change was applied');
      if (!LIVE.includes(row.state) || !row.hostId)
        throw new Conflict('vm_not_running', `the VM is ${row.state}: the live change was not applied`);
      await ctx.step('agent');
      const t = await d.target(row.hostId);
      try {
        if (c.device === 'drive')
          await d.agent.call(t, agentApi.devices.patchDrive, {
            params: { id: row.id, drive_id: c.id },
            body: { rate_limiter: c.rate_limiter },
          });
        else if (c.device === 'nic')
          await d.agent.call(t, agentApi.devices.patchNic, {
            params: { id: row.id, iface_id: c.id },
            body: {
              rx_rate_limiter: (c.config.rx_rate_limiter as RateLimiter | undefined) ?? null,
              tx_rate_limiter: (c.config.tx_rate_limiter as RateLimiter | undefined) ?? null,
            },
          });
        else await d.agent.call(t, agentApi.devices.patchBalloon, { params: { id: row.id }, body: c.patch });
      } catch (err) {
        throw classifyAgentError(err);
      }
      const reason = `${c.action} applied live`;
      // Read again: the stored config may have changed since the request (operations of a VM run one at a time).
      const now = (await d.vms.get(row.id)) ?? row;
      const devices = ((now.config as { devices?: DeviceConfig }).devices ?? {}) as DeviceConfig;
      const balloon = c.device === 'balloon' && devices.balloon ? { ...devices.balloon, ...c.patch } : undefined;
      const done = await d.machine.complete({
        vmId: row.id,
        finish: ending(op, 'succeeded', reason),
        event: { actor: op.actor, action: c.action, detail: c.detail },
        write: async (tx) => {
          if (c.device === 'drive') await d.repo.updateDrive(row.id, c.id, c.rate_limiter, tx);
          else if (c.device === 'nic') await d.repo.updateNicConfig(row.id, c.id, c.config, tx);
          else if (balloon) await d.repo.setConfig(tx, row.id, { ...now.config, devices: { ...devices, balloon } });
        },
      });
      if (!done) return { state: 'cancelled', reason: 'another manager took this change over' };
      return { state: 'succeeded', reason };
    },
  };
}
