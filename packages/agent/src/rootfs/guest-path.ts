/** A path inside the guest filesystem that cannot be used safely (it would reach debugfs' command parser). */
export class GuestPathError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`unsafe guest path ${JSON.stringify(path)}: ${reason}`);
    this.name = 'GuestPathError';
  }
}

// No whitespace, quotes, backslashes or '#': debugfs' command-file parser splits and unquotes on those.
const SAFE_SEGMENT = /^[A-Za-z0-9_@%+=,.:-]+$/;
const SAFE_LINK_TARGET = /^[A-Za-z0-9_@%+=,.:/-]+$/;
export const SAFE_HOST_PATH = /^\/[A-Za-z0-9_@%+=,.:/-]*$/;

/** Returns `path` if it is absolute, normalized, free of `..` and within the safe charset; throws otherwise. */
export function assertGuestPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0) throw new GuestPathError(String(path), 'empty');
  if (path.length > 1024) throw new GuestPathError(path, 'too long');
  if (!path.startsWith('/')) throw new GuestPathError(path, 'not absolute');
  if (path === '/') return path;
  if (path.endsWith('/')) throw new GuestPathError(path, 'trailing slash');
  for (const seg of path.slice(1).split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new GuestPathError(path, 'not normalized');
    if (!SAFE_SEGMENT.test(seg)) throw new GuestPathError(path, 'characters outside [A-Za-z0-9_@%+=,.:-]');
  }
  return path;
}

export function assertLinkTarget(target: string): string {
  if (!SAFE_LINK_TARGET.test(target) || target.length > 1024) throw new GuestPathError(target, 'unsafe symlink target');
  return target;
}
