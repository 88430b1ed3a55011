export type * from './api-types.js';
export { FirecrackerApiError, FirecrackerClient, type FirecrackerClientOptions } from './client.js';
export {
  balloonStats,
  patchMmds,
  putMmds,
  type SnapshotResult,
  setBalloon,
  snapshotCreate,
  updateDriveRateLimiter,
  updateNicRateLimiter,
} from './control.js';
export { FirecrackerDriver, type FirecrackerDriverOptions } from './driver.js';
export { buildJailerArgv, JAILER_DEFAULT_BASE, type JailerOptions, jailRoot } from './jailer.js';
export { buildLaunchPlan, firecrackerFiles, type LaunchPlanOptions, snapshotMemPath } from './launch-plan.js';
export { type FcRequest, fc, type HttpMethod } from './requests.js';
export { InvalidFirecrackerValue } from './validate.js';
