import { randomBytes } from 'node:crypto';
import type {
  CreateVmRequest,
  FunctionInvokeRequest,
  FunctionInvokeResult,
  FunctionLoaded,
  FunctionLoadRequest,
  Invocation,
  InvocationError,
  InvocationStart,
  Snapshot,
  Vm,
} from '@nqvm/api';
import type { FastifyBaseLogger } from 'fastify';
import type { FunctionsConfig } from '../../config.ts';
import { DomainError } from '../../domain/errors.ts';
import type { SecretBox } from '../../security/secret-box.ts';
import type { SnapshotsService } from '../snapshots/snapshots.service.ts';
import type { AgentTarget } from '../vms/agent-client.ts';
import type { VmRow } from '../vms/vms.repository.ts';
import type { VmsService } from '../vms/vms.service.ts';
import { FunctionGate } from './functions.gate.ts';
import type { FunctionRow, FunctionsRepository, InvocationRow, VersionRow } from './functions.repository.ts';
import type { FunctionEngine } from './functions.service.ts';
import { toInvocation } from './functions.view.ts';

/** How the manager reaches the runner in a runtime VM (through its host agent: HttpAgentApi.functionLoad/Invoke). */
export interface FunctionGuest {
  load(t: AgentTarget, vmId: string, body: FunctionLoadRequest): Promise<FunctionLoaded>;
  invoke(t: AgentTarget, vmId: string, body: FunctionInvokeRequest): Promise<FunctionInvokeResult>;
}

export interface RunnerDeps {
  repo: FunctionsRepository;
  vms: Pick<VmsService, 'create' | 'delete' | 'row' | 'target' | 'action'>;
  snapshots: Pick<SnapshotsService, 'create' | 'instantiate' | 'delete' | 'get'>;
  guest: FunctionGuest;
  secrets: SecretBox;
  imageId(name: string): Promise<string | undefined>;
  /** This manager's name in invocation leases. */
  owner: string;
  log: Pick<FastifyBaseLogger, 'warn' | 'info' | 'error'>;
  config: FunctionsConfig;
}

/** The tag every VM run for a function carries (the reaper finds leftovers by it). */
export const FUNCTION_VM_TAG = 'nqvm-function';
const ACTOR = 'system:functions';
const LEASE_MS = 30_000;

class InstanceFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstanceFailed';
  }
}

const errorOf = (err: unknown): InvocationError => ({
  type: err instanceof DomainError ? err.code : err instanceof Error ? err.name : 'Error',
  message: err instanceof Error ? err.message : String(err),
  stack: null,
  reason: 'runtime',
});

/**
 * Runs invocations (cold: a VM booted and loaded for it; warm: restored from the version's snapshot; pool: a paused
 * restored instance taken and resumed), each in an instance of its own that is deleted afterwards, and keeps each
 * current version's warm snapshot and pool. Invocation rows carry a lease: the reaper ends those of a manager that
 * is gone as failed and deletes their instances.
 */
export class FunctionRunner implements FunctionEngine {
  private readonly gates = new Map<string, FunctionGate>();
  private readonly filling = new Set<string>();
  private readonly background = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly d: RunnerDeps) {}

  private track<T>(p: Promise<T>): void {
    const t = p.catch((err) => this.d.log.warn({ err }, 'function background work failed'));
    this.background.add(t);
    void t.finally(() => this.background.delete(t));
  }

  private gateOf(fn: FunctionRow): FunctionGate {
    let gate = this.gates.get(fn.id);
    if (!gate) {
      gate = new FunctionGate(fn.name, fn.concurrency, fn.queueLimit);
      this.gates.set(fn.id, gate);
    }
    gate.limit = fn.concurrency;
    gate.queueLimit = fn.queueLimit;
    return gate;
  }

  async invoke(
    fn: FunctionRow,
    version: VersionRow,
    event: unknown,
    opts: { trigger: 'api' | 'http'; wait: boolean },
  ): Promise<Invocation> {
    const gate = this.gateOf(fn);
    const place = gate.admit();
    let row: InvocationRow;
    try {
      row = await this.d.repo.insertInvocation({
        functionId: fn.id,
        versionId: version.id,
        version: version.version,
        trigger: opts.trigger,
        event: event ?? {},
        owner: this.d.owner,
        leaseUntil: new Date(Date.now() + LEASE_MS),
      });
    } catch (err) {
      place.release();
      throw err;
    }
    const run = (async () => {
      try {
        await place.wait;
        await this.execute(row, fn, version, event ?? {});
      } finally {
        place.release();
        if (gate.idle) this.gates.delete(fn.id);
      }
    })();
    if (!opts.wait) {
      this.track(run);
      return toInvocation(row);
    }
    await run;
    return toInvocation((await this.d.repo.invocation(row.id)) ?? row);
  }

  private async execute(inv: InvocationRow, fn: FunctionRow, version: VersionRow, event: unknown): Promise<void> {
    const t0 = Date.now();
    const { repo } = this.d;
    await repo.updateInvocation(inv.id, this.d.owner, { state: 'running', startedAt: new Date() });
    let vmId: string | undefined;
    let patch: Parameters<FunctionsRepository['updateInvocation']>[2];
    try {
      const inst = await this.instance(fn, version, (id, start) =>
        repo.updateInvocation(inv.id, this.d.owner, { vmId: id, start }),
      );
      vmId = inst.vmId;
      const res = await this.d.guest.invoke(await this.targetOf(inst.row), inst.vmId, {
        event,
        timeout_ms: version.timeoutMs,
        output_limit_bytes: this.d.config.outputLimitBytes,
      });
      patch = {
        state: res.status,
        value: res.status === 'succeeded' ? (res.value ?? null) : null,
        error:
          res.status === 'succeeded'
            ? null
            : res.status === 'timed_out'
              ? {
                  type: res.error?.type ?? 'TimeoutError',
                  message: res.error?.message ?? `the handler ran longer than ${version.timeoutMs} ms`,
                  stack: res.error?.stack || null,
                  reason: 'timeout',
                }
              : {
                  type: res.error?.type ?? 'Error',
                  message: res.error?.message ?? 'the handler failed',
                  stack: res.error?.stack || null,
                  reason: res.error?.reason ?? 'exception',
                },
        stdout: res.stdout,
        stderr: res.stderr,
        stdoutTruncated: res.stdout_truncated,
        stderrTruncated: res.stderr_truncated,
        durationMs: Math.round(res.duration_ms),
      };
    } catch (err) {
      this.d.log.warn({ err, invocation_id: inv.id, function_id: fn.id }, 'invocation failed to run');
      patch = { state: 'failed', error: errorOf(err) };
    } finally {
      if (vmId) this.discard(vmId);
    }
    await repo.updateInvocation(inv.id, this.d.owner, {
      ...patch,
      totalMs: Date.now() - t0,
      finishedAt: new Date(),
      leaseOwner: null,
      leaseExpiresAt: null,
    });
    this.refill(fn, version);
  }

  /** An instance with the version's code loaded, for one invocation: from the pool, the snapshot, or booted. */
  private async instance(
    fn: FunctionRow,
    version: VersionRow,
    chosen: (vmId: string, start: InvocationStart) => Promise<unknown>,
  ): Promise<{ vmId: string; row: VmRow }> {
    const pooled = await this.d.repo.takeInstance(version.id);
    if (pooled) {
      await chosen(pooled.vmId, 'pool');
      await this.d.repo.deleteInstance(pooled.vmId);
      try {
        await this.d.vms.action(pooled.vmId, 'resume', ACTOR);
        return { vmId: pooled.vmId, row: await this.d.vms.row(pooled.vmId) };
      } catch (err) {
        // A pooled instance that cannot be resumed is dropped; the invocation goes on without it.
        this.d.log.warn({ err, vm_id: pooled.vmId }, 'pooled function instance could not be resumed');
        this.discard(pooled.vmId);
      }
    }
    const current = (await this.d.repo.versionById(version.id)) ?? version;
    if (current.snapshotState === 'ready' && current.snapshotId) {
      const vm = await this.d.snapshots.instantiate(current.snapshotId, this.vmName(fn, 'w'), ACTOR);
      await chosen(vm.id, 'warm');
      return { vmId: vm.id, row: await this.ready(vm.id) };
    }
    const vm = await this.boot(fn, version, 'c');
    await chosen(vm.id, 'cold');
    const row = await this.ready(vm.id);
    await this.load(row, version);
    return { vmId: vm.id, row };
  }

  private vmName(fn: FunctionRow, kind: string): string {
    return `fn-${fn.name.slice(0, 40)}-${kind}${randomBytes(4).toString('hex')}`;
  }

  private async boot(fn: FunctionRow, version: VersionRow, kind: string): Promise<Vm> {
    const { kernelImage, initrdImage } = this.d.config;
    const rootfs = `runtime-${version.runtime}`;
    const [kernelId, initrdId, rootfsId] = await Promise.all([
      this.d.imageId(kernelImage),
      this.d.imageId(initrdImage),
      this.d.imageId(rootfs),
    ]);
    if (!kernelId || !rootfsId)
      throw new InstanceFailed(`the ${version.runtime} runtime needs the images ${kernelImage} and ${rootfs}`);
    // The host agent reaches the runner at the guest's address: an instance without a NIC could never report
    // ready nor be invoked (no vsock channel yet), so say so at once instead of after the ready timeout.
    if (!version.network)
      throw new InstanceFailed(
        'functions with network off cannot run yet: the runner is reached over the instance NIC (set network: true)',
      );
    const req: CreateVmRequest = {
      name: this.vmName(fn, kind),
      description: `function ${fn.name} v${version.version}`,
      vcpu: version.vcpu,
      mem_mib: version.memMib,
      kernel_image_id: kernelId,
      ...(initrdId ? { initrd_image_id: initrdId } : {}),
      rootfs_image_id: rootfsId,
      tags: [FUNCTION_VM_TAG, `function:${fn.id}`.slice(0, 63)],
    };
    return this.d.vms.create(req, ACTOR);
  }

  /** Waits until the instance runs and its guest agent reported ready since this boot (or restore). */
  private async ready(vmId: string): Promise<VmRow> {
    const deadline = Date.now() + this.d.config.readyTimeoutMs;
    for (;;) {
      const row = await this.d.vms.row(vmId);
      if (row.state === 'running' && row.guestReadyAt && (!row.bootedAt || row.guestReadyAt >= row.bootedAt))
        return row;
      if (row.state === 'error' || row.state === 'stopped' || row.state === 'deleting')
        throw new InstanceFailed(`the instance ${row.state === 'error' ? `failed: ${row.lastError}` : row.state}`);
      if (this.stopped) throw new InstanceFailed('the manager is stopping');
      if (Date.now() > deadline)
        throw new InstanceFailed(
          `the instance was not ready within the ready timeout (state ${row.state}, guest ready at ${row.guestReadyAt?.toISOString() ?? 'never'}, booted at ${row.bootedAt?.toISOString() ?? 'never'})`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async targetOf(row: VmRow): Promise<AgentTarget> {
    if (!row.hostId) throw new InstanceFailed('the instance has no host');
    return this.d.vms.target(row.hostId);
  }

  private async load(row: VmRow, version: VersionRow): Promise<void> {
    const env = { ...version.env };
    for (const [k, sealed] of Object.entries(version.secretsEnc)) env[k] = this.d.secrets.open(sealed);
    await this.d.guest.load(await this.targetOf(row), row.id, {
      runtime: version.runtime,
      handler: version.handler,
      files: version.files,
      env,
    });
  }

  /** Deletes an instance in the background; the reaper retries what this could not. */
  private discard(vmId: string): void {
    this.track(
      this.d.vms.delete(vmId, ACTOR).catch((err) => {
        if (!(err instanceof DomainError && err.status === 404)) throw err;
      }),
    );
  }

  versionAdded(fn: FunctionRow, version: VersionRow): void {
    this.track(this.buildSnapshot(fn, version));
  }

  /** Boots the version once, loads it and takes a Full snapshot; then retires older versions' snapshots. */
  private async buildSnapshot(fn: FunctionRow, version: VersionRow): Promise<void> {
    const { repo } = this.d;
    if (!(await repo.setSnapshot(version.id, ['none', 'failed'], { snapshotState: 'building' }))) return;
    let builder: string | undefined;
    try {
      const vm = await this.boot(fn, version, 'b');
      builder = vm.id;
      await repo.setSnapshot(version.id, ['building'], { snapshotState: 'building', builderVmId: vm.id });
      await this.load(await this.ready(vm.id), version);
      let snap: Snapshot = await this.d.snapshots.create(
        vm.id,
        { name: `fn-${fn.name.slice(0, 44)}-v${version.version}`, snapshot_type: 'Full' },
        ACTOR,
      );
      const deadline = Date.now() + 10 * 60_000;
      while (snap.state === 'creating' && Date.now() < deadline && !this.stopped) {
        await new Promise((r) => setTimeout(r, 250));
        snap = await this.d.snapshots.get(snap.id);
      }
      if (snap.state !== 'ready') throw new InstanceFailed(`the snapshot ended ${snap.state}: ${snap.error ?? ''}`);
      const kept = await repo.setSnapshot(version.id, ['building'], {
        snapshotState: 'ready',
        snapshotId: snap.id,
        builderVmId: null,
      });
      // The function was deleted (or changed hands) meanwhile: nothing uses this snapshot.
      if (!kept) await this.d.snapshots.delete(snap.id, ACTOR);
    } catch (err) {
      this.d.log.warn({ err, function_id: fn.id, version: version.version }, 'warm snapshot build failed');
      await repo.setSnapshot(version.id, ['building'], { snapshotState: 'failed', builderVmId: null });
    } finally {
      if (builder) this.discard(builder);
    }
    await this.retire(fn.id);
    const current = await repo.get(fn.id);
    if (current?.version === version.version) this.refill(current, (await repo.versionById(version.id)) ?? version);
  }

  /** Older versions' snapshots and pooled instances go once no invocation of theirs is live. */
  private async retire(functionId: string): Promise<void> {
    const { repo } = this.d;
    const fn = await repo.get(functionId);
    if (!fn) return;
    for (const v of await repo.allVersions(functionId)) {
      if (v.version >= fn.version) continue;
      for (const inst of await repo.instances({ versionId: v.id })) {
        await repo.deleteInstance(inst.vmId);
        this.discard(inst.vmId);
      }
      if (v.snapshotId && v.snapshotState === 'ready' && !(await repo.liveOnVersion(v.id))) {
        if (await repo.setSnapshot(v.id, ['ready'], { snapshotState: 'none', snapshotId: null }))
          await this.d.snapshots.delete(v.snapshotId, ACTOR).catch((err) => {
            if (!(err instanceof DomainError && err.status === 404)) throw err;
          });
      }
    }
  }

  /** Tops the current version's pool up to its size, one instance at a time per version. */
  private refill(fn: FunctionRow, version: VersionRow): void {
    if (this.stopped || this.d.config.poolSize === 0 || this.filling.has(version.id)) return;
    this.filling.add(version.id);
    this.track(
      (async () => {
        try {
          for (;;) {
            const [current, v] = await Promise.all([this.d.repo.get(fn.id), this.d.repo.versionById(version.id)]);
            if (this.stopped || !current || !v || current.version !== v.version) return;
            if (v.snapshotState !== 'ready' || !v.snapshotId) return;
            const have = (await this.d.repo.instances({ versionId: v.id })).filter((i) => i.state !== 'taken');
            if (have.length >= this.d.config.poolSize) return;
            await this.addPooled(current, v, v.snapshotId);
          }
        } finally {
          this.filling.delete(version.id);
        }
      })(),
    );
  }

  private async addPooled(fn: FunctionRow, v: VersionRow, snapshotId: string): Promise<void> {
    const vm = await this.d.snapshots.instantiate(snapshotId, this.vmName(fn, 'p'), ACTOR);
    await this.d.repo.insertInstance({ vmId: vm.id, versionId: v.id, functionId: fn.id, owner: this.d.owner });
    try {
      await this.ready(vm.id);
      await this.d.vms.action(vm.id, 'pause', ACTOR);
      await this.d.repo.setInstance(vm.id, 'ready');
    } catch (err) {
      await this.d.repo.deleteInstance(vm.id);
      this.discard(vm.id);
      throw err;
    }
  }

  async removeFunction(fn: FunctionRow): Promise<void> {
    const { repo } = this.d;
    for (const inst of await repo.instances({ functionId: fn.id })) {
      await repo.deleteInstance(inst.vmId);
      this.discard(inst.vmId);
    }
    for (const inv of await repo.liveInvocations(fn.id)) if (inv.vmId) this.discard(inv.vmId);
    for (const v of await repo.allVersions(fn.id)) {
      if (v.builderVmId) this.discard(v.builderVmId);
      if (v.snapshotId) {
        await repo.setSnapshot(v.id, ['ready', 'building', 'failed', 'none'], {
          snapshotState: 'none',
          snapshotId: null,
        });
        await this.d.snapshots.delete(v.snapshotId, ACTOR).catch((err) => {
          if (!(err instanceof DomainError && err.status === 404)) throw err;
        });
      }
    }
  }

  /**
   * One pass of housekeeping: renews this manager's leases, ends invocations whose manager is gone (failed, their
   * instances deleted), and deletes function VMs nothing refers to any more (left by a crash or a failed delete).
   */
  async reap(now = new Date()): Promise<void> {
    const { repo } = this.d;
    await repo.renewLeases(this.d.owner, new Date(now.getTime() + LEASE_MS));
    for (const inv of await repo.failAbandoned(now)) if (inv.vmId) this.discard(inv.vmId);
    for (const vmId of await repo.orphanFunctionVms(FUNCTION_VM_TAG, new Date(now.getTime() - 120_000)))
      this.discard(vmId);
  }

  /** An embedded database has one manager: what was live when it stopped can never end otherwise. */
  async recoverAll(): Promise<void> {
    for (const inv of await this.d.repo.failAbandoned(new Date(), this.d.owner)) if (inv.vmId) this.discard(inv.vmId);
  }

  start(intervalMs = 5000): void {
    this.stopped = false;
    this.timer = setInterval(() => {
      this.track(this.reap());
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.background.size) await Promise.allSettled([...this.background]);
  }
}
