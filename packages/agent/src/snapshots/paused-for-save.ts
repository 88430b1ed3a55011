import { rm, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { VmmDriver, VmmHandle } from '../vmm/types.ts';
import type { VmFiles } from '../vms/layout.ts';

/**
 * A VM adopted paused whose last agent died while a snapshot save held it paused (its marker is there) runs again:
 * the manager retries the save. True when it was resumed.
 */
export async function resumeCutSave(
  driver: Pick<VmmDriver, 'resume'>,
  handle: VmmHandle,
  f: Pick<VmFiles, 'pausedForSave'>,
  log: Pick<Logger, 'warn'>,
): Promise<boolean> {
  if (
    !(await stat(f.pausedForSave).then(
      () => true,
      () => false,
    ))
  )
    return false;
  try {
    await driver.resume(handle);
    log.warn({ file: f.pausedForSave }, 'resumed a VM an interrupted snapshot save left paused');
    return true;
  } catch (err) {
    log.warn({ err, file: f.pausedForSave }, 'could not resume a VM an interrupted snapshot save left paused');
    return false;
  } finally {
    await rm(f.pausedForSave, { force: true });
  }
}
