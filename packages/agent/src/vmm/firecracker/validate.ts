/** Strict checks for every value that reaches a Firecracker/jailer argv or an API URL path. */

export class InvalidFirecrackerValue extends Error {
  constructor(
    readonly field: string,
    readonly value: string,
    reason: string,
  ) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${reason}`);
    this.name = 'InvalidFirecrackerValue';
  }
}

const ID = /^[a-zA-Z0-9_-]{1,64}$/;
// The jailer accepts only alphanumerics and '-' (vmm-facts B).
const JAILER_ID = /^[a-zA-Z0-9-]{1,64}$/;
const PATH_SEGMENT = /^[A-Za-z0-9._+-]+$/;
const TAP = /^[a-zA-Z0-9_-]{1,15}$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
// sun_path is 108 bytes including the terminating NUL.
const MAX_UNIX_SOCKET_PATH = 107;

/** An id used as a URL segment (drive_id, iface_id) or as `--id`. */
export function assertId(field: string, value: string): string {
  if (!ID.test(value)) throw new InvalidFirecrackerValue(field, value, 'expected ^[a-zA-Z0-9_-]{1,64}$');
  return value;
}

export function assertJailerId(value: string): string {
  if (!JAILER_ID.test(value)) throw new InvalidFirecrackerValue('jailer id', value, 'expected ^[a-zA-Z0-9-]{1,64}$');
  return value;
}

/** Absolute, normalised, and made only of [A-Za-z0-9._+-] segments: nothing a shell or a parser could read. */
export function assertAbsPath(field: string, value: string): string {
  if (!value.startsWith('/') || value.length > 4096) {
    throw new InvalidFirecrackerValue(field, value, 'expected an absolute path');
  }
  for (const seg of value.slice(1).split('/')) {
    if (seg === '.' || seg === '..' || !PATH_SEGMENT.test(seg)) {
      throw new InvalidFirecrackerValue(field, value, 'path segments must match [A-Za-z0-9._+-]+ (no . or ..)');
    }
  }
  return value;
}

export function assertSocketPath(field: string, value: string): string {
  assertAbsPath(field, value);
  if (Buffer.byteLength(value) > MAX_UNIX_SOCKET_PATH) {
    throw new InvalidFirecrackerValue(field, value, `unix socket paths are limited to ${MAX_UNIX_SOCKET_PATH} bytes`);
  }
  return value;
}

export function assertTap(value: string): string {
  if (!TAP.test(value)) throw new InvalidFirecrackerValue('tap', value, 'expected ^[a-zA-Z0-9_-]{1,15}$');
  return value;
}

export function assertMac(value: string): string {
  if (!MAC.test(value)) throw new InvalidFirecrackerValue('mac', value, 'expected xx:xx:xx:xx:xx:xx');
  return value;
}

export function assertUint(field: string, value: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidFirecrackerValue(field, String(value), `expected an integer in [${min}, ${max}]`);
  }
  return value;
}
