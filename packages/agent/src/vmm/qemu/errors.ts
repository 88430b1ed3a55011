/** A launch spec value that may not reach QEMU's argv (bad charset, out of range, unsupported). */
export class InvalidLaunchSpec extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`invalid ${field}: ${reason} (got ${JSON.stringify(value)?.slice(0, 80)})`);
    this.name = 'InvalidLaunchSpec';
  }
}

/** The spec asks for something this host cannot provide (e.g. vsock without /dev/vhost-vsock). */
export class VmmFeatureUnavailable extends Error {
  constructor(
    readonly feature: string,
    reason: string,
  ) {
    super(`${feature} unavailable on this host: ${reason}`);
    this.name = 'VmmFeatureUnavailable';
  }
}

/** QEMU did not come up: it exited early or its QMP socket never answered. */
export class VmmLaunchFailed extends Error {
  constructor(
    readonly vmId: string,
    reason: string,
  ) {
    super(`QEMU for ${vmId} failed to start: ${reason}`);
    this.name = 'VmmLaunchFailed';
  }
}

/** QMP answered a command with an error object. */
export class QmpCommandError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
    this.name = 'QmpCommandError';
  }
}

/** No answer from QMP in time, or the connection closed under a pending command. */
export class QmpUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QmpUnavailable';
  }
}
