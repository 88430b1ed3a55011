/**
 * A stand-in for the Firecracker v1.16.1 API process (no binary or usable KVM exists on this machine).
 * Every request is checked against the official swagger, then against Firecracker's pre/post-boot rules
 * (rpc_interface.rs, vmm-facts A.1); answers are 204, 200 + JSON, or 400 `{fault_message}`.
 * Run as a file it behaves as a `firecracker` executable: `--api-sock`, `--id`, `--version`; its stdio is
 * the "guest serial" (a boot line on start, echo of stdin), and SendCtrlAltDel exits 0 as reboot=k does.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import type { FirecrackerSpec } from './firecracker-spec.js';

type Obj = Record<string, unknown>;
export type StandinPhase = 'Not started' | 'Running' | 'Paused';

export interface RecordedRequest {
  method: string;
  path: string;
  body?: unknown;
  status: number;
  fault_message?: string;
}

export interface StandinOptions {
  socketPath: string;
  id: string;
  spec?: FirecrackerSpec;
  onRecord?: (r: RecordedRequest) => void;
  /** What the "guest" does on SendCtrlAltDel; with reboot=k the real VMM exits. */
  onCtrlAltDel?: () => void;
  onBoot?: () => void;
  /** A failed snapshot load ends the real process. */
  onFatal?: (message: string) => void;
}

export interface Standin {
  readonly records: RecordedRequest[];
  readonly vm: StandinVm;
  close(): Promise<void>;
}

class Fault extends Error {}

const PRE_BOOT_ONLY = new Set([
  'putMachineConfiguration',
  'patchMachineConfiguration',
  'putCpuConfiguration',
  'putGuestBootSource',
  'putGuestDriveByID',
  'putGuestNetworkInterfaceByID',
  'putGuestVsock',
  'putEntropyDevice',
  'putSerialDevice',
  'putLogger',
  'putMetrics',
  'putMmdsConfig',
  'putBalloon',
  'loadSnapshot',
]);
const POST_BOOT_ONLY = new Set([
  'patchGuestDriveByID',
  'patchGuestNetworkInterfaceByID',
  'patchVm',
  'patchBalloon',
  'describeBalloonStats',
  'patchBalloonStatsInterval',
  'createSnapshot',
]);
// Anything but these makes the process "not fresh" for PUT /snapshot/load.
const FRESH_ALLOWED = new Set(['putLogger', 'putMetrics']);

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** The VM model behind the API: configuration, phase and the rules between them. */
export class StandinVm {
  phase: StandinPhase = 'Not started';
  machine: Obj = { vcpu_count: 1, mem_size_mib: 128, smt: false, track_dirty_pages: false, huge_pages: 'None' };
  cpuConfig?: Obj;
  bootSource?: Obj;
  drives = new Map<string, Obj>();
  nics = new Map<string, Obj>();
  balloon?: Obj;
  entropy?: Obj;
  vsock?: Obj;
  serial?: Obj;
  logger?: Obj;
  metrics?: Obj;
  mmdsConfig?: Obj;
  mmds: unknown = null;
  private fresh = true;

  constructor(
    readonly id: string,
    private readonly hooks: Pick<StandinOptions, 'onCtrlAltDel' | 'onBoot' | 'onFatal'> = {},
  ) {}

  /** Returns [status, body] or throws Fault for a 400. */
  handle(op: string, params: Record<string, string>, body: Obj): [number, unknown] {
    const booted = this.phase !== 'Not started';
    if (booted && PRE_BOOT_ONLY.has(op))
      throw new Fault('The requested operation is not supported after starting the microVM.');
    if (!booted && POST_BOOT_ONLY.has(op))
      throw new Fault('The requested operation is not supported before starting the microVM.');
    if (op === 'loadSnapshot' && !this.fresh) {
      throw new Fault('Loading a microVM snapshot not allowed after configuring boot-specific resources.');
    }
    const result = this.dispatch(op, params, body);
    if (!FRESH_ALLOWED.has(op) && op.startsWith('put')) this.fresh = false;
    return result;
  }

  private sameId(pathId: string | undefined, bodyId: unknown): string {
    if (pathId === undefined || pathId !== bodyId)
      throw new Fault(`The id from the path [${pathId}] does not match the id from the body [${String(bodyId)}]!`);
    return pathId;
  }

  private dispatch(op: string, params: Record<string, string>, body: Obj): [number, unknown] {
    switch (op) {
      case 'describeInstance':
        return [200, { app_name: 'Firecracker', id: this.id, state: this.phase, vmm_version: '1.16.1' }];
      case 'getFirecrackerVersion':
        return [200, { firecracker_version: '1.16.1' }];
      case 'getMachineConfiguration':
        return [200, this.machine];
      case 'getExportVmConfig':
        return [200, this.exportConfig()];
      case 'putLogger':
        if (this.logger) throw new Fault('Logger can only be initialized once.');
        this.logger = body;
        return [204, undefined];
      case 'putMetrics':
        if (this.metrics) throw new Fault('Reinitialization of metrics not allowed.');
        this.metrics = body;
        return [204, undefined];
      case 'putMachineConfiguration':
      case 'patchMachineConfiguration': {
        const next: Obj =
          op === 'putMachineConfiguration'
            ? { smt: false, track_dirty_pages: false, ...body }
            : { ...this.machine, ...body };
        const vcpus = next.vcpu_count as number;
        if (next.smt === true && vcpus > 1 && vcpus % 2 === 1) {
          throw new Fault(
            'The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.',
          );
        }
        this.machine = next;
        return [204, undefined];
      }
      case 'putCpuConfiguration':
        this.cpuConfig = body;
        return [204, undefined];
      case 'putGuestBootSource':
        this.bootSource = body;
        return [204, undefined];
      case 'putGuestDriveByID': {
        const id = this.sameId(params.drive_id, body.drive_id);
        if (body.is_root_device && [...this.drives.values()].some((d) => d.is_root_device && d.drive_id !== id)) {
          throw new Fault('A root block device already exists!');
        }
        if (body.socket === undefined && (body.path_on_host === undefined || body.is_read_only === undefined)) {
          throw new Fault(
            'Unable to create the block device: path_on_host and is_read_only are required for virtio-block.',
          );
        }
        this.drives.set(id, body);
        return [204, undefined];
      }
      case 'patchGuestDriveByID': {
        const id = this.sameId(params.drive_id, body.drive_id);
        const drive = this.drives.get(id);
        if (!drive) throw new Fault(`Unable to patch the block device: device with id ${id} not found.`);
        this.drives.set(id, { ...drive, ...body });
        return [204, undefined];
      }
      case 'putGuestNetworkInterfaceByID': {
        const id = this.sameId(params.iface_id, body.iface_id);
        for (const n of this.nics.values()) {
          if (n.iface_id === id) continue;
          if (n.host_dev_name === body.host_dev_name)
            throw new Fault(`Open tap device failed: ${String(body.host_dev_name)} already in use.`);
          if (body.guest_mac && n.guest_mac === body.guest_mac)
            throw new Fault(`The MAC address is already in use: ${String(body.guest_mac)}`);
        }
        this.nics.set(id, body);
        return [204, undefined];
      }
      case 'patchGuestNetworkInterfaceByID': {
        const id = this.sameId(params.iface_id, body.iface_id);
        const nic = this.nics.get(id);
        if (!nic) throw new Fault(`Invalid interface ID - not found: ${id}`);
        this.nics.set(id, { ...nic, ...body });
        return [204, undefined];
      }
      case 'putBalloon':
        this.balloon = body;
        return [204, undefined];
      case 'describeBalloonConfig':
        if (!this.balloon) throw new Fault('No balloon device found.');
        return [200, this.balloon];
      case 'patchBalloon':
        if (!this.balloon) throw new Fault('No balloon device found.');
        if ((body.amount_mib as number) > (this.machine.mem_size_mib as number)) {
          throw new Fault('Amount of pages requested is too large.');
        }
        this.balloon = { ...this.balloon, amount_mib: body.amount_mib };
        return [204, undefined];
      case 'describeBalloonStats':
      case 'patchBalloonStatsInterval': {
        if (!this.balloon) throw new Fault('No balloon device found.');
        const enabled = ((this.balloon.stats_polling_interval_s as number | undefined) ?? 0) > 0;
        if (op === 'patchBalloonStatsInterval') {
          if (enabled !== (body.stats_polling_interval_s as number) > 0) {
            throw new Fault('Cannot enable/disable the statistics after boot.');
          }
          this.balloon = { ...this.balloon, stats_polling_interval_s: body.stats_polling_interval_s };
          return [204, undefined];
        }
        if (!enabled) throw new Fault('Statistics for the balloon device are not enabled');
        const mib = this.balloon.amount_mib as number;
        const total = (this.machine.mem_size_mib as number) * 1024 * 1024;
        return [
          200,
          {
            target_pages: mib * 256,
            actual_pages: mib * 256,
            target_mib: mib,
            actual_mib: mib,
            total_memory: total,
            free_memory: total - mib * 1024 * 1024,
          },
        ];
      }
      case 'putEntropyDevice':
        this.entropy = body;
        return [204, undefined];
      case 'putGuestVsock':
        this.vsock = body;
        return [204, undefined];
      case 'putSerialDevice':
        this.serial = body;
        return [204, undefined];
      case 'putMmdsConfig':
        for (const ifc of body.network_interfaces as string[]) {
          if (!this.nics.has(ifc))
            throw new Fault(
              `The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface: ${ifc}`,
            );
        }
        this.mmdsConfig = body;
        return [204, undefined];
      case 'putMmds':
        this.mmds = body;
        return [204, undefined];
      case 'patchMmds':
        if (this.mmds === null) throw new Fault('The MMDS data store is not initialized.');
        this.mmds = mergePatch(this.mmds, body);
        return [204, undefined];
      case 'getMmds':
        if (this.mmds === null) return [404, { fault_message: 'The MMDS data store is not initialized.' }];
        return [200, this.mmds];
      case 'createSyncAction':
        return this.action(body.action_type as string);
      case 'patchVm':
        this.phase = body.state === 'Paused' ? 'Paused' : 'Running';
        return [204, undefined];
      case 'createSnapshot':
        if (this.phase !== 'Paused') throw new Fault('Cannot create a snapshot: the microVM is not paused.');
        writeFileSync(
          body.snapshot_path as string,
          JSON.stringify({ standin_snapshot: 1, config: this.exportConfig() }),
        );
        writeFileSync(body.mem_file_path as string, Buffer.alloc(4096));
        return [204, undefined];
      case 'loadSnapshot':
        return this.load(body);
      default:
        throw new Fault(`${op} is not implemented by the stand-in.`);
    }
  }

  private action(type: string): [number, unknown] {
    if (type === 'InstanceStart') {
      if (this.phase !== 'Not started')
        throw new Fault('The requested operation is not supported after starting the microVM.');
      if (!this.bootSource) throw new Fault('Cannot start microvm without kernel configuration.');
      this.phase = 'Running';
      this.hooks.onBoot?.();
      return [204, undefined];
    }
    if (this.phase === 'Not started')
      throw new Fault('The requested operation is not supported before starting the microVM.');
    if (type === 'SendCtrlAltDel') this.hooks.onCtrlAltDel?.();
    if (type === 'FlushMetrics' && this.metrics) {
      appendFileSync(
        this.metrics.metrics_path as string,
        `${JSON.stringify({ utc_timestamp_ms: Date.now(), vmm: {} })}\n`,
      );
    }
    return [204, undefined];
  }

  private load(body: Obj): [number, unknown] {
    const hasFile = body.mem_file_path !== undefined;
    const hasBackend = body.mem_backend !== undefined;
    if (hasFile === hasBackend) throw new Fault('Exactly one of mem_file_path or mem_backend must be specified.');
    const memPath = hasFile ? (body.mem_file_path as string) : ((body.mem_backend as Obj).backend_path as string);
    let saved: { config: Obj };
    try {
      saved = JSON.parse(readFileSync(body.snapshot_path as string, 'utf8')) as { config: Obj };
      if (!existsSync(memPath)) throw new Error(`memory file ${memPath} not found`);
    } catch (e) {
      const message = `Load snapshot error: ${(e as Error).message}`;
      this.hooks.onFatal?.(message);
      throw new Fault(message);
    }
    this.machine = (saved.config['machine-config'] as Obj | undefined) ?? this.machine;
    for (const d of (saved.config.drives as Obj[] | undefined) ?? []) this.drives.set(d.drive_id as string, d);
    for (const n of (saved.config['network-interfaces'] as Obj[] | undefined) ?? [])
      this.nics.set(n.iface_id as string, n);
    for (const o of (body.network_overrides as Obj[] | undefined) ?? []) {
      const nic = this.nics.get(o.iface_id as string);
      if (!nic) throw new Fault(`Invalid network override: no interface ${String(o.iface_id)} in the snapshot.`);
      nic.host_dev_name = o.host_dev_name;
    }
    this.phase = body.resume_vm ? 'Running' : 'Paused';
    this.hooks.onBoot?.();
    return [204, undefined];
  }

  private exportConfig(): Obj {
    const out: Obj = {
      'machine-config': this.machine,
      drives: [...this.drives.values()],
      'network-interfaces': [...this.nics.values()],
    };
    const optional = {
      'boot-source': this.bootSource,
      balloon: this.balloon,
      vsock: this.vsock,
      entropy: this.entropy,
      logger: this.logger,
      metrics: this.metrics,
      'mmds-config': this.mmdsConfig,
    };
    for (const [k, v] of Object.entries(optional)) if (v !== undefined) out[k] = v;
    return out;
  }
}

export async function startFirecrackerStandin(opts: StandinOptions): Promise<Standin> {
  // Loaded lazily so `--version` answers without parsing the swagger.
  const spec = opts.spec ?? new (await import('./firecracker-spec.js')).FirecrackerSpec();
  const vm = new StandinVm(opts.id, opts);
  const records: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const text = Buffer.concat(chunks).toString('utf8');
      let status = 400;
      let payload: unknown;
      let body: unknown;
      try {
        body = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        payload = { fault_message: 'Invalid JSON body.' };
      }
      if (!payload) {
        const check = spec.validateRequest(method, path, body);
        if (!check.valid || !check.operationId) {
          payload = { fault_message: `Invalid request: ${check.errors.join('; ')}` };
        } else {
          try {
            [status, payload] = vm.handle(check.operationId, check.pathParams ?? {}, (body ?? {}) as Obj);
            if (status === 200 && !spec.validateResponse(method, path, 200, payload).valid) {
              [status, payload] = [500, { fault_message: 'stand-in produced a response outside the spec' }];
            }
          } catch (e) {
            if (!(e instanceof Fault)) throw e;
            payload = { fault_message: e.message };
          }
        }
      }
      const record: RecordedRequest = { method, path, status };
      if (body !== undefined) record.body = body;
      if (status >= 400) record.fault_message = (payload as { fault_message: string }).fault_message;
      records.push(record);
      opts.onRecord?.(record);
      if (payload === undefined) res.writeHead(status).end();
      else res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(payload));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, resolve);
  });
  return { records, vm, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i >= 0) return argv[i + 1];
  return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** Executable mode. FC_STANDIN_CTRL_ALT_DEL=ignore makes the guest ignore Ctrl-Alt-Del (to test stop's SIGKILL). */
async function main(argv: string[]): Promise<void> {
  if (argv.includes('--version')) {
    process.stdout.write('Firecracker v1.16.1 (nqvm stand-in)\n');
    return;
  }
  // Under the jailer stand-in, paths are inside its "chroot" (a directory: the stand-in cannot chroot).
  const socketPath = `${process.env.FC_STANDIN_CHROOT ?? ''}${flag(argv, '--api-sock') ?? '/run/firecracker.socket'}`;
  const id = flag(argv, '--id') ?? 'anonymous-instance';
  if (existsSync(socketPath)) {
    process.stderr.write(`Failed to open the API socket at: ${socketPath}. Check that it is not already used.\n`);
    process.exit(1);
  }
  const recordFile = `${socketPath}.requests.jsonl`;
  await startFirecrackerStandin({
    socketPath,
    id,
    onRecord: (r) => appendFileSync(recordFile, `${JSON.stringify(r)}\n`),
    onBoot: () => process.stdout.write(`stand-in guest ${id}: booted\n`),
    onCtrlAltDel: () => {
      if (process.env.FC_STANDIN_CTRL_ALT_DEL === 'ignore') return;
      // Firecracker exits 0 once the guest resets through the i8042 (reboot=k).
      setTimeout(() => process.exit(0), 20);
    },
    onFatal: () => setTimeout(() => process.exit(1), 20),
  });
  process.stderr.write(`stand-in firecracker ${id} listening on ${socketPath}\n`);
  process.stdin.on('data', (chunk: Buffer) => process.stdout.write(`echo: ${chunk.toString('utf8')}`));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exit(2);
  });
}
