/**
 * Every request the driver sends, built as data: a method, a spec path, a body. The client sends them;
 * the unit tests validate each one against the official swagger without a server.
 */
import type {
  ActionType,
  Balloon,
  BalloonStats,
  BalloonStatsUpdate,
  BalloonUpdate,
  BootSource,
  CpuConfig,
  Drive,
  EntropyDevice,
  FullVmConfiguration,
  InstanceInfo,
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
  Vm,
  Vsock,
} from './api-types.js';
import { assertId } from './validate.js';

export type HttpMethod = 'GET' | 'PUT' | 'PATCH';

/** `Res` is the decoded 200 body (undefined for 204 answers); it only types the client's return value. */
export interface FcRequest<Res = undefined> {
  method: HttpMethod;
  path: string;
  body?: unknown;
  /** Phantom field carrying the response type. */
  readonly _res?: Res;
}

function req<Res = undefined>(method: HttpMethod, path: string, body?: unknown): FcRequest<Res> {
  return body === undefined ? { method, path } : { method, path, body };
}

function idPath(prefix: string, field: string, id: string): string {
  return `${prefix}/${encodeURIComponent(assertId(field, id))}`;
}

export const fc = {
  describeInstance: () => req<InstanceInfo>('GET', '/'),
  getVmConfig: () => req<FullVmConfiguration>('GET', '/vm/config'),
  getMachineConfig: () => req<MachineConfiguration>('GET', '/machine-config'),
  putMachineConfig: (b: MachineConfiguration) => req('PUT', '/machine-config', b),
  /** The v1.16.1 swagger still lists vcpu_count and mem_size_mib as required here, so send both. */
  patchMachineConfig: (b: MachineConfiguration) => req('PATCH', '/machine-config', b),
  putCpuConfig: (b: CpuConfig) => req('PUT', '/cpu-config', b),
  putBootSource: (b: BootSource) => req('PUT', '/boot-source', b),
  putDrive: (b: Drive) => req('PUT', idPath('/drives', 'drive_id', b.drive_id), b),
  patchDrive: (b: PartialDrive) => req('PATCH', idPath('/drives', 'drive_id', b.drive_id), b),
  putNetworkInterface: (b: NetworkInterface) => req('PUT', idPath('/network-interfaces', 'iface_id', b.iface_id), b),
  patchNetworkInterface: (b: PartialNetworkInterface) =>
    req('PATCH', idPath('/network-interfaces', 'iface_id', b.iface_id), b),
  putLogger: (b: Logger) => req('PUT', '/logger', b),
  putMetrics: (b: Metrics) => req('PUT', '/metrics', b),
  putBalloon: (b: Balloon) => req('PUT', '/balloon', b),
  patchBalloon: (b: BalloonUpdate) => req('PATCH', '/balloon', b),
  patchBalloonStats: (b: BalloonStatsUpdate) => req('PATCH', '/balloon/statistics', b),
  getBalloonStats: () => req<BalloonStats>('GET', '/balloon/statistics'),
  putEntropy: (b: EntropyDevice) => req('PUT', '/entropy', b),
  putVsock: (b: Vsock) => req('PUT', '/vsock', b),
  putSerial: (b: SerialDevice) => req('PUT', '/serial', b),
  putMmds: (b: MmdsContents) => req('PUT', '/mmds', b),
  patchMmds: (b: MmdsContents) => req('PATCH', '/mmds', b),
  getMmds: () => req<MmdsContents>('GET', '/mmds'),
  putMmdsConfig: (b: MmdsConfig) => req('PUT', '/mmds/config', b),
  action: (action_type: ActionType) => req('PUT', '/actions', { action_type }),
  patchVm: (state: Vm['state']) => req('PATCH', '/vm', { state } satisfies Vm),
  snapshotCreate: (b: SnapshotCreateParams) => req('PUT', '/snapshot/create', b),
  snapshotLoad: (b: SnapshotLoadParams) => req('PUT', '/snapshot/load', b),
} as const;
