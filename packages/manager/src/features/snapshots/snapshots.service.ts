import { randomUUID } from 'node:crypto';
import {
  agentApi,
  type CreateSnapshotRequest,
  type CreateVmRequest,
  type Snapshot,
  type Template,
  type Vm,
  type VmSpec,
} from '@nqvm/api';
import { decodeCursor, encodeCursor, type Key } from '../../db/keyset.ts';
import { Conflict, NotFound, Unprocessable } from '../../domain/errors.ts';
import type { SecretBox } from '../../security/secret-box.ts';
import type { OperationsRepository, Tx } from '../operations/operations.repository.ts';
import type { OperationWaiter } from '../operations/operations.waiter.ts';
import type { TemplatesService } from '../templates/templates.service.ts';
import type { AgentClient } from '../vms/agent-client.ts';
import type { VmStateMachine } from '../vms/vm-state-machine.ts';
import type { VmRow } from '../vms/vms.repository.ts';
import type { Launcher, VmsService } from '../vms/vms.service.ts';
import type { SnapshotRow, SnapshotsRepository } from './snapshots.repository.ts';

/** The part of a VM's settings an instance or a template is made from (no credentials, no addresses). */
export type SourceSpec = Omit<CreateVmRequest, 'name' | 'password' | 'ssh_authorized_keys' | 'host_id' | 'start'>;

export function sourceSpecOf(row: VmRow, network: string | null): SourceSpec {
  return {
    description: row.description,
    vcpu: row.vcpu,
    mem_mib: row.memMib,
    vmm: row.vmm,
    smt: row.smt,
    cpu_template: row.cpuTemplate,
    kernel_image_id: row.kernelImageId,
    ...(row.initrdImageId ? { initrd_image_id: row.initrdImageId } : {}),
    rootfs_image_id: row.rootfsImageId,
    boot_args: row.bootArgs,
    network,
    tags: row.tags,
    owner: row.owner,
    environment: row.environment,
    restart_policy: row.restartPolicy,
    ...(row.username ? { username: row.username } : {}),
  };
}

export function toSnapshot(r: SnapshotRow): Snapshot {
  return {
    id: r.id,
    vm_id: r.vmId,
    host_id: r.hostId,
    project_id: r.projectId,
    name: r.name,
    snapshot_type: r.snapshotType,
    parent_id: r.parentId,
    state: r.state,
    state_bytes: r.stateBytes,
    disk_bytes: r.diskBytes,
    source_spec: r.sourceSpec,
    error: r.error,
    created_at: r.createdAt.toISOString(),
  };
}

const SNAPSHOT_KEYS: Key[] = [
  { column: 'created_at', kind: 'timestamptz' },
  { column: 'id', kind: 'uuid' },
];

/** How long a snapshot request waits for its operation before answering with it still running. */
const SAVE_ANSWER_MS = 60_000;

/** Refuses, in the transaction of its insert, a snapshot past its project's quota (quotas feature). */
export interface SnapshotQuotaCheck {
  snapshotAdded(tx: Tx, snapshotId: string): Promise<void>;
}

/** Snapshots, instances made from them, clones and VM → template. */
export class SnapshotsService {
  constructor(
    private readonly repo: SnapshotsRepository,
    private readonly vms: VmsService,
    private readonly templates: TemplatesService,
    private readonly secrets: SecretBox,
    private readonly agent: AgentClient,
    private readonly operations: Pick<OperationsRepository, 'liveWith'>,
    private readonly machine: Pick<VmStateMachine, 'queue'>,
    private readonly waiter: Pick<OperationWaiter, 'result'>,
  ) {}

  private quota: SnapshotQuotaCheck | undefined;

  useQuotaCheck(check: SnapshotQuotaCheck): void {
    this.quota = check;
  }

  /** How the `instantiate` and `clone` operations boot their VM on the host (idempotent on the agent). */
  readonly launchers: { instantiate: Launcher; clone: Launcher } = {
    instantiate: (t, spec, input) =>
      this.agent.call(t, agentApi.snapshots.instantiate, {
        params: { sid: String(input.snapshot_id) },
        body: { spec },
      }),
    // Same host: the agent copies the source's disk under the source's lock, then boots the copy as a new VM.
    clone: (t, spec, input) =>
      this.agent.call(t, agentApi.snapshots.clone, { params: { id: String(input.source_vm_id) }, body: { spec } }),
  };

  private async vmRow(id: string): Promise<VmRow> {
    return this.vms.row(id);
  }

  async get(id: string): Promise<Snapshot> {
    const r = await this.repo.get(id);
    if (!r) throw new NotFound('snapshot', id);
    return toSnapshot(r);
  }

  /** Newest first, a keyset page in one query; the cursor is the last item's creation time and id. */
  async listForVm(
    vmId: string,
    limit = 50,
    cursor?: string,
  ): Promise<{ items: Snapshot[]; next_cursor: string | null }> {
    await this.vmRow(vmId);
    const after = cursor === undefined ? undefined : decodeCursor(cursor, SNAPSHOT_KEYS);
    const rows = await this.repo.pageForVm(vmId, limit + 1, after);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(({ key: _, ...r }) => toSnapshot(r)),
      next_cursor: rows.length > limit && last ? encodeCursor([last.key, last.id]) : null,
    };
  }

  async create(vmId: string, req: CreateSnapshotRequest, actor: string): Promise<Snapshot> {
    const vm = await this.vmRow(vmId);
    const type = req.snapshot_type ?? 'Full';
    if (type === 'Full' && req.parent_id)
      throw new Unprocessable('parent_not_allowed', 'only a Diff snapshot has a parent', 'body.parent_id');
    const parent = type === 'Diff' ? await this.diffParent(vmId, req.parent_id) : null;
    if (vm.state !== 'running' && vm.state !== 'paused')
      throw new Conflict('vm_not_running', `a snapshot needs a running or paused VM; this one is ${vm.state}`);
    if (!vm.hostId) throw new Conflict('vm_not_placed', 'the VM has no host');
    // An instance takes its new identity from the guest agent it resumes with: without one up, it could not.
    if (!vm.guestReadyAt || (vm.bootedAt && vm.guestReadyAt < vm.bootedAt))
      throw new Conflict(
        'guest_not_ready',
        'the guest agent has not reported ready since this boot; take the snapshot once it has (guest_ready_at)',
      );
    const nic = (await this.vms.get(vmId)).nics[0];
    const sid = randomUUID();
    const { operation } = await this.machine.queue({
      vmId,
      operation: {
        kind: 'snapshot',
        actor,
        input: { snapshot_id: sid, ...(parent ? { parent_id: parent.id } : {}) },
      },
      write: async (tx) => {
        const written = await this.repo.insertIn(tx, {
          id: sid,
          vmId,
          hostId: vm.hostId,
          name: req.name,
          snapshotType: type,
          parentId: parent?.id ?? null,
          state: 'creating',
          stateBytes: 0,
          diskBytes: 0,
          sourceSpec: { ...sourceSpecOf(vm, nic?.network ?? null), source_vm_id: vm.id, source_vm_name: vm.name },
          passwordEnc: vm.passwordEnc,
          projectId: vm.projectId,
        });
        await this.quota?.snapshotAdded(tx, sid);
        return written;
      },
    });
    // The answer waits for the save (the contract clients know); a slow one is answered in state creating.
    await this.waiter.result(operation.id, SAVE_ANSWER_MS);
    const saved = await this.repo.get(sid);
    if (!saved) throw new NotFound('snapshot', sid);
    return { ...toSnapshot(saved), operation_id: operation.id };
  }

  /** The parent a Diff builds on: the one asked for, or the VM's newest ready snapshot. */
  private async diffParent(vmId: string, parentId: string | undefined): Promise<SnapshotRow> {
    if (parentId) {
      const p = await this.repo.get(parentId);
      if (!p || p.vmId !== vmId)
        throw new Unprocessable(
          'snapshot_parent_invalid',
          `snapshot ${parentId} is not a snapshot of this VM`,
          'body.parent_id',
        );
      if (p.state !== 'ready') throw new Conflict('snapshot_not_ready', `snapshot ${parentId} is ${p.state}`);
      return p;
    }
    const latest = (await this.repo.listForVm(vmId)).find((r) => r.state === 'ready');
    if (!latest)
      throw new Unprocessable(
        'snapshot_parent_required',
        'a Diff snapshot builds on an earlier snapshot of this VM; take a Full one first',
        'body.snapshot_type',
      );
    return latest;
  }

  async delete(id: string, actor: string): Promise<void> {
    const r = await this.repo.get(id);
    if (!r) throw new NotFound('snapshot', id);
    if (r.state === 'creating') throw new Conflict('snapshot_not_ready', `snapshot ${id} is still being saved`);
    if (await this.operations.liveWith('instantiate', 'snapshot_id', id))
      throw new Conflict('snapshot_in_use', 'an instance is being restored from it');
    if (await this.repo.hasChildren(id))
      throw new Conflict('has_dependents', 'a Diff snapshot builds on it; delete that one first');
    const { operation } = await this.machine.queue({
      // Behind the source VM's own operations (a save of it in progress), when it still exists.
      vmId: r.vmId,
      operation: { kind: 'snapshot_delete', actor, input: { snapshot_id: id } },
    });
    await this.waiter.result(operation.id, SAVE_ANSWER_MS);
  }

  /** A new VM through the normal create path (new MAC, IP and token), booted by restoring the snapshot. */
  async instantiate(id: string, name: string, actor: string): Promise<Vm> {
    const snap = await this.repo.get(id);
    if (!snap) throw new NotFound('snapshot', id);
    if (snap.state !== 'ready' || !snap.hostId)
      throw new Conflict('snapshot_not_ready', `snapshot ${id} is ${snap.state}`);
    if (await this.operations.liveWith('snapshot_delete', 'snapshot_id', id))
      throw new Conflict('snapshot_not_ready', `snapshot ${id} is being deleted`);
    const { source_vm_id: _a, source_vm_name: _b, ...spec } = snap.sourceSpec as SourceSpec & Record<string, unknown>;
    const password = snap.passwordEnc ? this.secrets.open(snap.passwordEnc) : undefined;
    return this.vms.create(
      { ...(spec as SourceSpec), name, host_id: snap.hostId, ...(password ? { password } : {}) },
      actor,
      { sourceSnapshotId: id, projectId: snap.projectId, boot: { kind: 'instantiate', input: { snapshot_id: id } } },
    );
  }

  /** Stopped: a new VM from the same images and settings (a fresh disk); running or paused: through a snapshot. */
  async clone(vmId: string, name: string, actor: string): Promise<Vm> {
    const vm = await this.vmRow(vmId);
    if (vm.state === 'running' || vm.state === 'paused') {
      const snap = await this.create(vmId, { name: `clone-${name}`.slice(0, 63), snapshot_type: 'Full' }, actor);
      return this.instantiate(snap.id, name, actor);
    }
    if (vm.state !== 'stopped') throw new Conflict('vm_busy', `cannot clone a VM that is ${vm.state}`);
    if (!vm.hostId) throw new Conflict('vm_not_placed', 'the VM has no host');
    const nic = (await this.vms.get(vmId)).nics[0];
    const password = vm.passwordEnc ? this.secrets.open(vm.passwordEnc) : undefined;
    const spec = {
      ...sourceSpecOf(vm, nic?.network ?? null),
      name,
      host_id: vm.hostId,
      ...(password ? { password } : {}),
      ...(vm.sshAuthorizedKeys.length ? { ssh_authorized_keys: vm.sshAuthorizedKeys } : {}),
    };
    // Never booted: it has no disk of its own yet, and a fresh copy of its base image is what that disk would be.
    if (!vm.bootedAt) return this.vms.create({ ...spec, start: true }, actor, { projectId: vm.projectId });
    return this.vms.create(spec, actor, {
      projectId: vm.projectId,
      boot: { kind: 'clone', input: { source_vm_id: vmId } },
    });
  }

  async saveTemplate(vmId: string, name: string, description: string | undefined, actor: string): Promise<Template> {
    const vm = await this.vmRow(vmId);
    const nic = (await this.vms.get(vmId)).nics[0];
    const spec: VmSpec = {
      vcpu: vm.vcpu,
      mem_mib: vm.memMib,
      vmm: vm.vmm,
      kernel_image_id: vm.kernelImageId,
      ...(vm.initrdImageId ? { initrd_image_id: vm.initrdImageId } : {}),
      rootfs_image_id: vm.rootfsImageId,
      ...(vm.bootArgs ? { boot_args: vm.bootArgs } : {}),
      ...(nic ? { network: nic.network } : {}),
      ...(vm.tags.length ? { tags: vm.tags } : {}),
    };
    return this.templates.create(
      { name, description: description ?? `saved from VM ${vm.name}`, spec, project_id: vm.projectId },
      actor,
    );
  }
}
