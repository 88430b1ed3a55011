/** Runtime operations on a running Firecracker VM, for the device, MMDS and snapshot features. */
import type { RateLimiter, VmmHandle } from '../types.js';
import type { BalloonStats, MmdsContents } from './api-types.js';
import { FirecrackerClient } from './client.js';
import { snapshotMemPath } from './launch-plan.js';
import { assertAbsPath, assertId, assertUint } from './validate.js';

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

/**
 * Pauses if needed (Firecracker snapshots only a paused VM), writes state and memory, then resumes a VM
 * that was running unless `resume` is false. Disks are not flushed by Firecracker: copy them separately.
 */
export async function snapshotCreate(
  handle: VmmHandle,
  opts: { statePath: string; memPath?: string; type?: 'Full' | 'Diff'; resume?: boolean },
): Promise<SnapshotResult> {
  const statePath = assertAbsPath('snapshot_path', opts.statePath);
  const memPath = assertAbsPath('mem_file_path', opts.memPath ?? snapshotMemPath(statePath));
  const client = clientFor(handle);
  const wasRunning = (await client.describeInstance()).state === 'Running';
  if (wasRunning) await client.pause();
  try {
    await client.snapshotCreate({
      snapshot_path: statePath,
      mem_file_path: memPath,
      snapshot_type: opts.type ?? 'Full',
    });
  } finally {
    if (wasRunning && opts.resume !== false) await client.resume();
  }
  return { statePath, memPath };
}
