import { timingSafeEqual } from 'node:crypto';
import type {
  AgentCloudInit,
  AgentVmSpec,
  AgentVmStatus,
  CreateVmRequest,
  OperationKind,
  Vm,
  VmAction,
  VmExitReport,
  VmState,
} from '@nqvm/api';
import type { ChangeFeed } from '../../db/changes.ts';
import { decodeCursor, encodeCursor, pageBody } from '../../db/keyset.ts';
import { DEFAULT_PROJECT_ID } from '../../db/schema.ts';
import { Conflict, Forbidden, InvalidTransition, NotFound, Unprocessable, WaitTimeout } from '../../domain/errors.ts';
import type { SecretBox } from '../../security/secret-box.ts';
import { hashToken, newToken } from '../../security/tokens.ts';
import type { EventsService } from '../events/events.service.ts';
import type { HostRow } from '../hosts/hosts.repository.ts';
import type { HostsService } from '../hosts/hosts.service.ts';
import type { Tx } from '../operations/operations.repository.ts';
import type { AgentApi, AgentTarget } from './agent-client.ts';
import { randomMac } from './ipam.ts';
import { type Candidate, place } from './scheduler.ts';
import { type ResolvedCreateVmRequest, resolveImageRefs } from './vm-image-refs.ts';
import { ACTIONS, assertAction } from './vm-state.ts';
import type { StartOperation, VmStateMachine } from './vm-state-machine.ts';
import { toVm } from './vm-view.ts';
import {
  isUniqueViolation,
  type NetworkRow,
  type NewVmRow,
  type NicRow,
  SORT_KEYS,
  type SortKey,
  type VmListFilter,
  type VmRow,
  type VmsRepository,
} from './vms.repository.ts';

export interface CatalogImage {
  id: string;
  kind: string;
  state: string;
  sha256: string | null;
  size_bytes: number;
  /** Its project and whether every project may use it. */
  project_id?: string;
  public?: boolean;
}

/** Looks images up for VM creation; the images feature implements it. */
export interface ImageCatalog {
  find(id: string): Promise<CatalogImage | undefined>;
  /** Several at once (one read); absent ids are missing from the map. */
  findMany(ids: string[]): Promise<Map<string, CatalogImage>>;
  /** The version a VM create's `name`, `name:tag` or `name@version` means. */
  byReference(name: string, sel: { tag?: string; version?: number }): Promise<CatalogImage | undefined>;
}

export interface VmsServiceOptions {
  cpuOvercommit: number;
  memOvercommit: number;
  stopTimeoutS: number;
  defaultNetwork: { name: string; cidr: string; gateway: string; bridge: string; nat: boolean };
}

type ImageField = 'kernel_image_id' | 'initrd_image_id' | 'rootfs_image_id';

/** What a create has just read or written, so the first boot and the answer need not read it again. */
export interface KnownRows {
  /** The row was inserted by this request. */
  isNew?: boolean;
  images?: Map<string, CatalogImage>;
  nics?: NicRow[];
  networks?: Map<string, NetworkRow>;
  host?: HostRow;
}

/**
 * Extends the agent spec (devices). `nics` are the VM's NIC rows, already read; `isNew`: the VM was created by this
 * request, so nothing has been attached to it yet (devices can only be added while it is stopped).
 */
export type SpecHook = (row: VmRow, spec: AgentVmSpec, ctx: { nics: NicRow[]; isNew: boolean }) => Promise<AgentVmSpec>;
const IMAGE_KINDS: Record<ImageField, string> = {
  kernel_image_id: 'kernel',
  initrd_image_id: 'initrd',
  rootfs_image_id: 'rootfs',
};

/** Boots a VM on its host from its agent spec: a cold boot, or another way (a snapshot restore, a disk clone). */
export type Launcher = (t: AgentTarget, spec: AgentVmSpec, input: Record<string, unknown>) => Promise<AgentVmStatus>;

/** How a boot that is not a plain cold boot is asked for: the operation kind and what its launcher needs. */
export interface BootRequest {
  kind: Extract<OperationKind, 'instantiate' | 'clone'>;
  input: Record<string, unknown>;
}

/** Refuses, in the transaction of a VM's insert or start, what takes its project past its quota (quotas feature). */
export interface VmQuotaCheck {
  created(tx: Tx, row: VmRow, rootfsBytes: number): Promise<void>;
  started(tx: Tx, row: VmRow): Promise<void>;
}

export class VmsService {
  private quota: VmQuotaCheck | undefined;

  /** Rows a create has just read, for its first boot in this process (a resumed boot reads them again). */
  private readonly hints = new Map<string, KnownRows & { row: VmRow }>();
  private readonly specHooks: SpecHook[] = [];
  private changes: ChangeFeed | undefined;

  constructor(
    private readonly repo: VmsRepository,
    private readonly hosts: HostsService,
    private readonly events: EventsService,
    private readonly images: ImageCatalog,
    private readonly agent: AgentApi,
    private readonly secrets: SecretBox,
    private readonly opts: VmsServiceOptions,
    readonly machine: VmStateMachine,
  ) {}

  async init(): Promise<void> {
    const n = this.opts.defaultNetwork;
    await this.repo.ensureNetwork(n);
  }

  private async view(row: VmRow, operationId?: string): Promise<Vm> {
    const nics = (await this.repo.nics([row.id])).get(row.id) ?? [];
    const net = await this.repo.network(this.opts.defaultNetwork.name);
    return withOperation(toVm(row, nics, new Map(net ? [[net.name, net.gateway]] : [])), operationId);
  }

  /** The rows a create read for its first boot, taken once. */
  takeHint(operationId: string): (KnownRows & { row: VmRow }) | undefined {
    const hint = this.hints.get(operationId);
    this.hints.delete(operationId);
    return hint;
  }

  async get(id: string): Promise<Vm> {
    return this.view(await this.row(id));
  }

  async row(id: string): Promise<VmRow> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('vm', id);
    return row;
  }

  /** One page as JSON text (`{items, next_cursor}`), rendered by the database in one query. */
  async listJson(q: VmListFilter & { limit?: number; cursor?: string; sort?: string }): Promise<string> {
    const sortRaw = q.sort ?? '-created_at';
    const dir = sortRaw.startsWith('-') ? 'desc' : 'asc';
    const sort = sortRaw.replace(/^-/, '') as SortKey;
    const keys = SORT_KEYS[sort];
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, keys);
    const page = await this.repo.listJson(q, sort, dir, q.limit ?? 50, after);
    return pageBody(page.items, page.next && encodeCursor(page.next));
  }

  private async checkImages(
    req: Pick<ResolvedCreateVmRequest, ImageField>,
    projectId: string,
  ): Promise<Record<ImageField, CatalogImage | undefined>> {
    const out = {} as Record<ImageField, CatalogImage | undefined>;
    const fields = (Object.keys(IMAGE_KINDS) as ImageField[]).filter((f) => req[f]);
    const found = await this.images.findMany(fields.map((f) => req[f]!));
    for (const field of fields) {
      const id = req[field]!;
      const img = found.get(id);
      // An image of another project, unless public, is answered like a missing one.
      if (!img || (img.project_id !== undefined && img.project_id !== projectId && !img.public))
        throw new Unprocessable('unknown_image', `image ${id} does not exist`, `body.${field}`);
      if (img.kind !== IMAGE_KINDS[field])
        throw new Unprocessable(
          'wrong_image_kind',
          `image ${id} is a ${img.kind}, not a ${IMAGE_KINDS[field]}`,
          `body.${field}`,
        );
      if (img.state !== 'ready' || !img.sha256)
        throw new Unprocessable('image_not_ready', `image ${id} is ${img.state}`, `body.${field}`);
      out[field] = img;
    }
    return out;
  }

  private async candidates(): Promise<(Candidate & { row: HostRow })[]> {
    return (await this.repo.hostsWithAllocations()).map(({ row: r, alloc }) => {
      const h = this.hosts.toHost(r, alloc);
      return {
        id: h.id,
        name: h.name,
        row: r,
        healthy: h.health === 'healthy',
        capacity: h.capacity,
        capabilities: h.capabilities,
        labels: h.labels,
        allocated: h.allocated,
      };
    });
  }

  /** A VM, placed, with its address; booted by a `create` operation (or `extra.boot`'s) unless `start` is false. */
  async create(
    input: CreateVmRequest,
    actor: string,
    extra: { templateId?: string; sourceSnapshotId?: string; boot?: BootRequest; projectId?: string } = {},
  ): Promise<Vm> {
    const req = await resolveImageRefs(input, (name, sel) => this.images.byReference(name, sel));
    const projectId = extra.projectId ?? DEFAULT_PROJECT_ID;
    const networkName = req.network === null ? null : (req.network ?? this.opts.defaultNetwork.name);
    const [images, hosts, network] = await Promise.all([
      this.checkImages(req, projectId),
      this.candidates(),
      networkName ? this.repo.network(networkName) : undefined,
    ]);
    const vmm = req.vmm ?? 'qemu';
    if (!hosts.some((h) => h.healthy && h.capabilities?.vmm.includes(vmm)))
      throw new Unprocessable('vmm_unavailable', `no healthy host can run ${vmm}`, 'body.vmm');
    if (req.host_id && !hosts.some((h) => h.id === req.host_id))
      throw new Unprocessable('unknown_host', `host ${req.host_id} does not exist`, 'body.host_id');
    const host = place(
      hosts,
      { vcpu: req.vcpu, mem_mib: req.mem_mib, vmm, host_id: req.host_id, host_labels: req.host_labels },
      {
        cpu: this.opts.cpuOvercommit,
        mem: this.opts.memOvercommit,
      },
    );
    if (networkName && !network)
      throw new Unprocessable('network_not_found', `network ${networkName} does not exist`, 'body.network');
    if (req.password && !req.username)
      throw new Unprocessable('username_required', 'a password needs a username', 'body.username');

    const token = newToken('vm');
    const start = extra.boot !== undefined || (req.start ?? true);
    const base: NewVmRow = {
      name: req.name,
      description: req.description ?? '',
      state: (start ? 'creating' : 'stopped') as VmState,
      hostId: host.id,
      vmm,
      vcpu: req.vcpu,
      memMib: req.mem_mib,
      smt: req.smt ?? false,
      cpuTemplate: req.cpu_template ?? 'None',
      kernelImageId: req.kernel_image_id,
      initrdImageId: req.initrd_image_id ?? null,
      rootfsImageId: req.rootfs_image_id,
      bootArgs: req.boot_args ?? '',
      tags: req.tags ?? [],
      owner: req.owner ?? '',
      environment: req.environment ?? '',
      restartPolicy: req.restart_policy ?? 'never',
      username: req.username ?? null,
      passwordEnc: req.password ? this.secrets.seal(req.password) : null,
      sshAuthorizedKeys: req.ssh_authorized_keys ?? [],
      guestTokenHash: hashToken(token),
      guestTokenEnc: this.secrets.seal(token),
      templateId: extra.templateId ?? null,
      sourceSnapshotId: extra.sourceSnapshotId ?? null,
      restartCount: 0,
      desiredRunning: start,
      // cloud-init's seed drive content, built by the agent at each boot.
      config: {
        ...(req.user_data !== undefined || req.meta_data !== undefined
          ? { cloud_init: { user_data: req.user_data, meta_data: req.meta_data } }
          : {}),
        // The environment of an OCI image's service, over the image's own.
        ...(req.env && Object.keys(req.env).length ? { env: req.env } : {}),
      },
      createdBy: actor,
      projectId,
    };

    let row: VmRow | undefined;
    let operationId: string | undefined;
    let nic: NicRow | null = null;
    const boot: StartOperation | undefined = start
      ? { kind: extra.boot?.kind ?? 'create', actor, input: extra.boot?.input ?? {} }
      : undefined;
    for (let attempt = 0; !row; attempt++) {
      const newNic = network
        ? { ifaceId: 'eth0', network: network.name, mac: req.mac ?? randomMac(), config: {} }
        : null;
      try {
        const insert = async (tx: Tx) => {
          const made = await this.repo.insertIn(tx, base, newNic);
          await this.quota?.created(tx, made.row, images.rootfs_image_id?.size_bytes ?? 0);
          return made;
        };
        const made = await this.machine.create(insert, {
          event: (r) => ({
            actor,
            action: 'create',
            detail: { name: r.name, host_id: host.id, vcpu: r.vcpu, mem_mib: r.memMib, vmm },
          }),
          ...(boot ? { operation: boot } : {}),
          beforeQueued: (r, op, n) => this.hints.set(op.id, { ...this.known(images, n, network, host, hosts), row: r }),
        });
        ({ row, nic } = made);
        operationId = made.operation?.id;
      } catch (err) {
        const constraint = isUniqueViolation(err);
        if (!constraint) throw err;
        if (constraint.includes('name'))
          throw new Conflict('vm_name_taken', `a VM named ${req.name} exists`, 'body.name');
        if (req.mac && constraint.includes('mac'))
          throw new Conflict('mac_taken', `MAC ${req.mac} is used by another VM`, 'body.mac');
        // Only a random MAC can collide (1 in 2^40 per pair): draw another.
        if (!constraint.includes('mac') || attempt >= 3) throw err;
      }
    }
    return withOperation(
      toVm(row, nic ? [nic] : [], new Map(network ? [[network.name, network.gateway]] : [])),
      operationId,
    );
  }

  private known(
    images: Record<ImageField, CatalogImage | undefined>,
    nic: NicRow | null,
    network: NetworkRow | undefined,
    host: { id: string },
    hosts: { id: string; row: HostRow }[],
  ): KnownRows {
    return {
      isNew: true,
      images: new Map(Object.values(images).flatMap((img) => (img ? [[img.id, img] as const] : []))),
      nics: nic ? [nic] : [],
      networks: new Map(network ? [[network.name, network]] : []),
      host: hosts.find((h) => h.id === host.id)?.row,
    };
  }

  async target(hostId: string, known?: HostRow): Promise<AgentTarget> {
    const { row, secret } = known?.id === hostId ? this.hosts.connectionOf(known) : await this.hosts.connection(hostId);
    return { hostId, addr: row.addr, secret };
  }

  /** What the host agent boots the VM from; `known` rows are used instead of reading them again. */
  async agentSpec(row: VmRow, known: KnownRows = {}): Promise<AgentVmSpec> {
    const ref = async (id: string) => {
      const img = known.images?.get(id) ?? (await this.images.find(id));
      if (!img?.sha256) throw new Unprocessable('image_not_ready', `image ${id} is not available`, 'image');
      return { image_id: id, sha256: img.sha256, size_bytes: img.size_bytes };
    };
    const [kernel, initrd, rootfs, nics] = await Promise.all([
      ref(row.kernelImageId),
      row.initrdImageId ? ref(row.initrdImageId) : undefined,
      ref(row.rootfsImageId),
      known.nics ?? this.repo.nics([row.id]).then((m) => m.get(row.id) ?? []),
    ]);
    const names = [...new Set(nics.map((n) => n.network))];
    const nets = new Map(
      await Promise.all(names.map(async (n) => [n, known.networks?.get(n) ?? (await this.repo.network(n))] as const)),
    );
    let spec: AgentVmSpec = {
      vm_id: row.id,
      name: row.name,
      vmm: row.vmm,
      vcpu: row.vcpu,
      mem_mib: row.memMib,
      smt: row.smt,
      cpu_template: row.cpuTemplate,
      boot_args: row.bootArgs,
      kernel,
      ...(initrd ? { initrd } : {}),
      rootfs,
      nics: nics.map((n) => {
        const net = nets.get(n.network)!;
        return { iface_id: n.ifaceId, mac: n.mac, ip: n.ip, gateway: net.gateway, bridge: net.bridge };
      }),
      guest: {
        hostname: row.name.replace(/[^a-zA-Z0-9-]/g, '-').slice(0, 63),
        ...(row.username ? { username: row.username } : {}),
        ...(row.passwordEnc ? { password: this.secrets.open(row.passwordEnc) } : {}),
        ...(row.sshAuthorizedKeys.length ? { ssh_authorized_keys: row.sshAuthorizedKeys } : {}),
        token: this.secrets.open(row.guestTokenEnc),
        install_agent: true,
        ...cloudInitOf(row.config),
      },
    };
    for (const hook of this.specHooks) spec = await hook(row, spec, { nics, isNew: known.isNew ?? false });
    return spec;
  }

  useQuotaCheck(check: VmQuotaCheck): void {
    this.quota = check;
  }

  /** Features that add to what a VM boots with (devices) extend the agent spec here. */
  useSpecHook(hook: SpecHook): void {
    this.specHooks.push(hook);
  }

  /**
   * Moves the VM for a user action (with its event and the operation it starts, in one transaction), or explains with
   * a 409 why it cannot.
   */
  private async guard(
    id: string,
    action: VmAction | 'delete',
    actor: string,
    patch: Partial<VmRow> = {},
    operation?: StartOperation,
    check?: (tx: Tx, row: VmRow) => Promise<void>,
  ): Promise<{ row: VmRow; operationId?: string }> {
    const current = await this.row(id);
    const to = assertAction(action, current.state);
    if (to === null) return { row: current };
    const moved = await this.machine.change({
      vmId: id,
      from: ACTIONS[action].from,
      to,
      patch,
      event: { actor, action },
      ...(operation ? { operation } : {}),
      ...(check ? { check } : {}),
    });
    if (!moved) throw new InvalidTransition(action, (await this.row(id)).state);
    return { row: moved.row, ...(moved.operation ? { operationId: moved.operation.id } : {}) };
  }

  /** `opts.force` (stop only): the VMM is killed at once instead of an ACPI power-down. */
  async action(id: string, action: VmAction, actor: string, opts: { force?: boolean } = {}): Promise<Vm> {
    switch (action) {
      case 'start': {
        const { row, operationId } = await this.guard(
          id,
          'start',
          actor,
          { desiredRunning: true, lastError: null },
          { kind: 'start', actor },
          async (tx, row) => this.quota?.started(tx, row),
        );
        return this.view(row, operationId);
      }
      case 'stop': {
        const { row, operationId } = await this.guard(
          id,
          'stop',
          actor,
          { desiredRunning: false },
          { kind: 'stop', actor, input: { timeout_s: this.opts.stopTimeoutS, ...(opts.force ? { force: true } : {}) } },
        );
        return this.view(row, operationId);
      }
      case 'pause':
      case 'resume':
      case 'ctrl-alt-del':
        return this.quickAction(id, action, actor);
    }
  }

  /** Short actions answered by the agent within the request; a refusal puts the VM back where it was. */
  private async quickAction(id: string, action: 'pause' | 'resume' | 'ctrl-alt-del', actor: string): Promise<Vm> {
    const before = await this.row(id);
    const to = assertAction(action, before.state);
    const row = to === null ? before : await this.moveFor(id, action, before.state, to);
    try {
      await this.agent.action(await this.target(row.hostId!), id, action);
    } catch (err) {
      const back = { actor, action, result: 'error' as const, detail: { error: String(err) } };
      if (row.state !== before.state)
        await this.machine.change({ vmId: id, from: [row.state], to: before.state, event: back });
      else await this.machine.note(id, back);
      throw err;
    }
    if (to === null) await this.machine.note(id, { actor, action });
    return this.view(row);
  }

  private async moveFor(id: string, action: VmAction, from: VmState, to: VmState): Promise<VmRow> {
    const moved = await this.machine.change({ vmId: id, from: [from], to });
    if (!moved) throw new InvalidTransition(action, (await this.row(id)).state);
    return moved.row;
  }

  async delete(id: string, actor: string): Promise<Vm> {
    const { row, operationId } = await this.guard(
      id,
      'delete',
      actor,
      { desiredRunning: false },
      { kind: 'delete', actor },
    );
    return this.view(row, operationId);
  }

  /** Resolves when the VM is in `state` (or gone, for `deleting`), else a 408 after the timeout. */
  async wait(id: string, state: VmState, timeoutS: number): Promise<Vm> {
    const deadline = Date.now() + timeoutS * 1000;
    // A change seen while the row is being read is kept, so the next wait does not sleep through it.
    let changed = false;
    let wake: () => void = () => {
      changed = true;
    };
    const unsubscribe = this.events.subscribe((e) => {
      if (e.resource_id === id) wake();
    });
    const unfollow = this.changes?.subscribe((c) => {
      if ('ids' in c && (c.ids === '*' || c.ids.includes(id))) wake();
    });
    try {
      for (;;) {
        changed = false;
        const row = await this.repo.get(id);
        if (!row) throw new NotFound('vm', id);
        if (row.state === state) return this.view(row);
        const left = deadline - Date.now();
        if (left <= 0) throw new WaitTimeout(row.state, state);
        if (changed) continue;
        // Any manager's change to the VM wakes us at once (change feed); the periodic re-read covers a feed outage.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 1000));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = () => {
          changed = true;
        };
      }
    } finally {
      unsubscribe();
      unfollow?.();
    }
  }

  /** Follows every manager's VM changes (NOTIFY), so waits wake when another manager moves the VM. */
  followChanges(feed: ChangeFeed): void {
    this.changes = feed;
  }

  /** An agent (or the reconciler) says a VMM exited on its own: record it and apply the restart policy. */
  async handleExit(hostId: string, report: VmExitReport): Promise<void> {
    const row = await this.repo.get(report.vm_id);
    if (!row || row.hostId !== hostId) return;
    if (!['running', 'paused', 'unknown'].includes(row.state)) return;
    const failed = report.signal !== null || (report.exit_code ?? 1) !== 0;
    const reason = report.signal ? `VMM killed by ${report.signal}` : `VMM exited with code ${report.exit_code}`;
    const moved = await this.machine.change({
      vmId: row.id,
      from: [row.state],
      to: 'stopped',
      patch: { pid: null, lastError: failed ? reason : null },
      event: {
        actor: `host:${hostId}`,
        action: 'vmm_exited',
        result: failed ? 'error' : 'info',
        detail: { exit_code: report.exit_code, signal: report.signal, restart_policy: row.restartPolicy },
      },
    });
    if (!moved) return;
    const restart = row.restartPolicy === 'always' || (row.restartPolicy === 'on-failure' && failed);
    if (!restart) return;
    await this.machine.change({
      vmId: row.id,
      from: ['stopped'],
      to: 'starting',
      patch: { restartCount: row.restartCount + 1 },
      event: {
        actor: 'system',
        action: 'restart',
        detail: { policy: row.restartPolicy, restart_count: row.restartCount + 1 },
      },
      operation: { kind: 'restart', actor: 'system' },
    });
  }

  /** True for this VM's token; a valid token of another VM is a 403 (it authenticated, but not for this VM). */
  async authenticateGuest(id: string, token: string): Promise<boolean> {
    const row = await this.repo.get(id);
    const a = Buffer.from(hashToken(token));
    if (row) {
      const b = Buffer.from(row.guestTokenHash);
      if (a.length === b.length && timingSafeEqual(a, b)) return true;
    }
    if (await this.repo.idByGuestTokenHash(hashToken(token))) throw new Forbidden("another VM's token");
    return false;
  }

  async guestReport(id: string, report: { ip: string; ready?: boolean }): Promise<void> {
    const row = await this.row(id);
    const first = !row.guestReadyAt && report.ready !== false;
    await this.repo.update(id, { guestIp: report.ip, ...(first ? { guestReadyAt: new Date() } : {}) });
    if (first || row.guestIp !== report.ip)
      await this.events.record({
        actor: `guest:${id}`,
        resourceType: 'vm',
        resourceId: id,
        action: first ? 'guest_ready' : 'guest_ip',
        detail: { ip: report.ip },
      });
  }

  /** The guest's credentials for users allowed to see them. */
  async shellCredentials(id: string): Promise<{ username: string | null; password: string | null }> {
    const row = await this.row(id);
    return { username: row.username, password: row.passwordEnc ? this.secrets.open(row.passwordEnc) : null };
  }

  async bridgeOf(network: string): Promise<string | undefined> {
    return (await this.repo.network(network))?.bridge;
  }

  agentTarget(hostId: string): Promise<AgentTarget> {
    return this.target(hostId);
  }
}

function withOperation(vm: Vm, operationId: string | undefined): Vm {
  return operationId ? { ...vm, operation_id: operationId } : vm;
}

/** The guest's cloud-init seed, when the VM was created with user_data or meta_data. */
function cloudInitOf(config: Record<string, unknown>): { cloud_init?: AgentCloudInit } {
  const c = config.cloud_init as AgentCloudInit | undefined;
  if (!c) return {};
  return {
    cloud_init: {
      ...(c.user_data !== undefined ? { user_data: c.user_data } : {}),
      ...(c.meta_data !== undefined ? { meta_data: c.meta_data } : {}),
    },
  };
}
