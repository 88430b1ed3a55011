export {
  type Accel,
  buildQemuArgs,
  CPU_MODELS,
  effectiveBootArgs,
  type QemuArgsOptions,
  qemuIds,
  throttleFromRateLimiter,
} from './args.js';
export { isProcessAlive, QemuDriver, type QemuDriverOptions } from './driver.js';
export {
  InvalidLaunchSpec,
  QmpCommandError,
  QmpUnavailable,
  VmmFeatureUnavailable,
  VmmLaunchFailed,
} from './errors.js';
export { QmpClient, type QmpEvent, type QmpGreeting, withQmp } from './qmp.js';
