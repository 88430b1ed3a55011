/** Runtime operations on a running Firecracker VM, for the device, MMDS and snapshot features. */
import type { RateLimiter, VmmHandle } from '../types.js';
import type { BalloonStats, MmdsContents, SnapshotCreateParams } from './api-types.js';
import { FirecrackerClient } from './client.js';
import { snapshotMemPath } from './launch-plan.js';
import { assertAbsPath, assertId, assertUint, InvalidFirecrackerValue } from './validate.js';

function clientFor(handle: VmmHandle): FirecrackerClient {
  return new FirecrackerClient(handle.paths.controlSocket);
}

/** PATCH /drives/{id}; a bucket with size 0 removes that limit. */
export async function updateDriveRateLimiter(handle: VmmHandle, driveId: string, rateLimiter: RateLimiter) {
  await clientFor(handle).patchDrive({ drive_id: assertId('drive_id', driveId), rate_limiter: rateLimiter });
}

/** PATCH /network-interfaces/{id}; Firecracker merges what is given with the current limiters. */
export async function updateNicRateLimiter(
  handle: VmmHandle,
  ifaceId: string,
  limits: { rx?: RateLimiter; tx?: RateLimiter },
) {
  await clientFor(handle).patchNetworkInterface({
    iface_id: assertId('iface_id', ifaceId),
    ...(limits.rx ? { rx_rate_limiter: limits.rx } : {}),
    ...(limits.tx ? { tx_rate_limiter: limits.tx } : {}),
  });
}

/** Target balloon size in MiB (memory taken from the guest), post-boot only. */
export async function setBalloon(handle: VmmHandle, amountMib: number) {
  await clientFor(handle).patchBalloon(assertUint('amount_mib', amountMib));
}

export function balloonStats(handle: VmmHandle): Promise<BalloonStats> {
  return clientFor(handle).getBalloonStats();
}

export async function putMmds(handle: VmmHandle, data: MmdsContents) {
  await clientFor(handle).putMmds(data);
}

/** JSON Merge Patch of the MMDS store. */
export async function patchMmds(handle: VmmHandle, data: MmdsContents) {
  await clientFor(handle).patchMmds(data);
}

export interface SnapshotResult {
  statePath: string;
  memPath: string;
}

export interface SnapshotCreateOptions {
  statePath: string;
  memPath?: string;
  type?: 'Full' | 'Diff';
  /** The VM's machine-config `track_dirty_pages`: a Diff writes only dirty pages, which needs it. */
  trackDirtyPages?: boolean;
  resume?: boolean;
}

/** The PUT /snapshot/create body (`fc.snapshotCreate`) for `opts`; a Diff without dirty-page tracking is refused before any call. */
export function snapshotCreateParams(opts: SnapshotCreateOptions): SnapshotCreateParams {
  const statePath = assertAbsPath('snapshot_path', opts.statePath);
  const memPath = assertAbsPath('mem_file_path', opts.memPath ?? snapshotMemPath(statePath));
  const type = opts.type ?? 'Full';
  if (type === 'Diff' && opts.trackDirtyPages !== true)
    throw new InvalidFirecrackerValue(
      'snapshot_type',
      type,
      'a Diff snapshot needs track_dirty_pages in the machine config (set it and restart the VM)',
    );
  return { snapshot_path: statePath, mem_file_path: memPath, snapshot_type: type };
}

/**
 * Pauses if needed (Firecracker snapshots only a paused VM), writes state and memory, then resumes a VM
 * that was running unless `resume` is false. Disks are not flushed by Firecracker: copy them separately.
 */
export async function snapshotCreate(handle: VmmHandle, opts: SnapshotCreateOptions): Promise<SnapshotResult> {
  const params = snapshotCreateParams(opts);
  const client = clientFor(handle);
  const wasRunning = (await client.describeInstance()).state === 'Running';
  if (wasRunning) await client.pause();
  try {
    await client.snapshotCreate(params);
  } finally {
    if (wasRunning && opts.resume !== false) await client.resume();
  }
  return { statePath: params.snapshot_path, memPath: params.mem_file_path };
}
