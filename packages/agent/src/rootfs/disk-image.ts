import { stat } from 'node:fs/promises';
import { CommandFailed, type CommandRunner, runChecked } from '../host/exec.ts';

/** Per-VM copy of a base image: reflink where the filesystem allows, sparse otherwise; the base is only read. */
export async function copyImage(runner: CommandRunner, src: string, dst: string): Promise<void> {
  await runChecked(runner, 'cp', ['--reflink=auto', '--sparse=always', '--', src, dst]);
}

/** Grows an image file and its ext4 filesystem to `sizeMiB` (shrinking is refused). */
export async function resizeImage(runner: CommandRunner, path: string, sizeMiB: number): Promise<void> {
  if (!Number.isInteger(sizeMiB) || sizeMiB <= 0) throw new RangeError(`bad size ${sizeMiB} MiB`);
  const current = (await stat(path)).size;
  if (sizeMiB * 1024 * 1024 < current) throw new RangeError(`refusing to shrink ${path} to ${sizeMiB} MiB`);
  await runChecked(runner, 'truncate', ['-s', `${sizeMiB}M`, '--', path]);
  const fsckArgs = ['-fy', '--', path];
  const fsck = await runner.run('e2fsck', fsckArgs);
  // e2fsck: 0 clean, 1 errors corrected; anything else means the filesystem is not safe to resize.
  if (fsck.code !== 0 && fsck.code !== 1) throw new CommandFailed('e2fsck', fsckArgs, fsck);
  await runChecked(runner, 'resize2fs', ['--', path]);
}
