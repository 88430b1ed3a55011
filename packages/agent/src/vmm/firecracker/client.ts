import http from 'node:http';
import type {
  ActionType,
  Balloon,
  BalloonStatsUpdate,
  BootSource,
  CpuConfig,
  Drive,
  EntropyDevice,
  Logger,
  MachineConfiguration,
  Metrics,
  MmdsConfig,
  MmdsContents,
  NetworkInterface,
  PartialDrive,
  PartialNetworkInterface,
  SerialDevice,
  SnapshotCreateParams,
  SnapshotLoadParams,
  Vsock,
} from './api-types.js';
import { type FcRequest, fc } from './requests.js';

/** A 4xx/5xx answer from Firecracker, carrying its `fault_message`. */
export class FirecrackerApiError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly faultMessage: string,
  ) {
    super(`Firecracker ${method} ${path} → ${status}: ${faultMessage}`);
    this.name = 'FirecrackerApiError';
  }
}

export interface FirecrackerClientOptions {
  /** Per-request deadline; Firecracker answers one request at a time, so keep it generous. */
  timeoutMs?: number;
}

/** HTTP/1.1 + JSON over Firecracker's API Unix socket. */
export class FirecrackerClient {
  private readonly timeoutMs: number;

  constructor(
    readonly socketPath: string,
    opts: FirecrackerClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  send<Res>(request: FcRequest<Res>): Promise<Res> {
    const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
    return new Promise<Res>((resolve, reject) => {
      const r = http.request(
        {
          socketPath: this.socketPath,
          method: request.method,
          path: request.path,
          // One request per connection: Firecracker's server is single-threaded and keep-alive buys nothing.
          agent: false,
          headers: {
            Accept: 'application/json',
            ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve((text.length > 0 ? JSON.parse(text) : undefined) as Res);
              return;
            }
            reject(new FirecrackerApiError(status, request.method, request.path, faultMessageOf(text)));
          });
        },
      );
      r.on('timeout', () => r.destroy(new Error(`Firecracker ${request.method} ${request.path} timed out`)));
      r.on('error', reject);
      r.end(payload);
    });
  }

  describeInstance() {
    return this.send(fc.describeInstance());
  }
  getVmConfig() {
    return this.send(fc.getVmConfig());
  }
  getMachineConfig() {
    return this.send(fc.getMachineConfig());
  }
  putMachineConfig(b: MachineConfiguration) {
    return this.send(fc.putMachineConfig(b));
  }
  patchMachineConfig(b: MachineConfiguration) {
    return this.send(fc.patchMachineConfig(b));
  }
  putCpuConfig(b: CpuConfig) {
    return this.send(fc.putCpuConfig(b));
  }
  putBootSource(b: BootSource) {
    return this.send(fc.putBootSource(b));
  }
  putDrive(b: Drive) {
    return this.send(fc.putDrive(b));
  }
  patchDrive(b: PartialDrive) {
    return this.send(fc.patchDrive(b));
  }
  putNetworkInterface(b: NetworkInterface) {
    return this.send(fc.putNetworkInterface(b));
  }
  patchNetworkInterface(b: PartialNetworkInterface) {
    return this.send(fc.patchNetworkInterface(b));
  }
  putLogger(b: Logger) {
    return this.send(fc.putLogger(b));
  }
  putMetrics(b: Metrics) {
    return this.send(fc.putMetrics(b));
  }
  putBalloon(b: Balloon) {
    return this.send(fc.putBalloon(b));
  }
  patchBalloon(amountMib: number) {
    return this.send(fc.patchBalloon({ amount_mib: amountMib }));
  }
  patchBalloonStats(b: BalloonStatsUpdate) {
    return this.send(fc.patchBalloonStats(b));
  }
  getBalloonStats() {
    return this.send(fc.getBalloonStats());
  }
  putEntropy(b: EntropyDevice) {
    return this.send(fc.putEntropy(b));
  }
  putVsock(b: Vsock) {
    return this.send(fc.putVsock(b));
  }
  putSerial(b: SerialDevice) {
    return this.send(fc.putSerial(b));
  }
  putMmds(b: MmdsContents) {
    return this.send(fc.putMmds(b));
  }
  patchMmds(b: MmdsContents) {
    return this.send(fc.patchMmds(b));
  }
  getMmds() {
    return this.send(fc.getMmds());
  }
  putMmdsConfig(b: MmdsConfig) {
    return this.send(fc.putMmdsConfig(b));
  }
  action(type: ActionType) {
    return this.send(fc.action(type));
  }
  pause() {
    return this.send(fc.patchVm('Paused'));
  }
  resume() {
    return this.send(fc.patchVm('Resumed'));
  }
  snapshotCreate(b: SnapshotCreateParams) {
    return this.send(fc.snapshotCreate(b));
  }
  snapshotLoad(b: SnapshotLoadParams) {
    return this.send(fc.snapshotLoad(b));
  }
}

function faultMessageOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { fault_message?: unknown };
    if (typeof parsed.fault_message === 'string') return parsed.fault_message;
  } catch {
    // Not JSON: fall through and report the raw body.
  }
  return text.trim() || '(empty response body)';
}
