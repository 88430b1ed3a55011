import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import { BadRequest } from '../../domain/errors.ts';

const FIELD = 'body.source.path';

/**
 * Resolves a client-given path to a real regular file inside `root`: `..` segments, absolute paths
 * elsewhere and symlinks pointing out of the root are refused.
 */
export async function resolveImagePath(root: string, input: string): Promise<string> {
  if (input.includes('\0')) throw new BadRequest('image_path_refused', 'the path contains a NUL byte', FIELD);
  if (input.split(/[\\/]/).includes('..'))
    throw new BadRequest('image_path_refused', 'the path must not contain ".." segments', FIELD);
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(isAbsolute(input) ? input : join(realRoot, input));
  } catch {
    throw new BadRequest('image_path_not_found', 'no file at that path under the image root', FIELD);
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep))
    throw new BadRequest('image_path_refused', 'the path resolves outside MANAGER_IMAGE_ROOT', FIELD);
  if (!(await stat(real)).isFile()) throw new BadRequest('image_path_refused', 'the path is not a regular file', FIELD);
  return real;
}
