export type NetInputKind =
  | 'bridge'
  | 'tap'
  | 'interface'
  | 'netns'
  | 'prefix'
  | 'mac'
  | 'ipv4'
  | 'cidr'
  | 'mtu'
  | 'rate_limiter';

/** A name or value that would reach a host command was refused before anything ran. */
export class InvalidNetInput extends Error {
  readonly code = 'INVALID_NET_INPUT';
  constructor(
    readonly kind: NetInputKind,
    readonly value: unknown,
    readonly reason: string,
  ) {
    super(`invalid ${kind} ${JSON.stringify(String(value))}: ${reason}`);
    this.name = 'InvalidNetInput';
  }
}

/** A rate limiter this host cannot enforce; refused rather than silently ignored. */
export class UnsupportedLimit extends Error {
  readonly code = 'UNSUPPORTED_LIMIT';
  constructor(
    readonly direction: 'rx' | 'tx',
    readonly bucket: 'ops',
    reason: string,
  ) {
    super(`${direction} ${bucket} rate limit is not supported: ${reason}`);
    this.name = 'UnsupportedLimit';
  }
}

/** The name is taken by a device of another kind (e.g. a TAP name used by a veth). */
export class NetConflict extends Error {
  readonly code = 'NET_CONFLICT';
  constructor(
    readonly device: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`device ${device} exists as ${actual || 'an unknown kind'}, expected ${expected}`);
    this.name = 'NetConflict';
  }
}
