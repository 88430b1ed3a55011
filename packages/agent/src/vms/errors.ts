/** Typed failures of the agent's API, mapped once to problem+json by the app's error handler. */
export class AgentError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

export class VmNotFound extends AgentError {
  constructor(id: string) {
    super(404, 'vm_not_found', `no VM ${id} on this host`);
  }
}

export class VmNotRunning extends AgentError {
  constructor(id: string, action: string) {
    super(409, 'vm_not_running', `VM ${id} is not running, cannot ${action}`);
  }
}

export class VmmNotAvailable extends AgentError {
  constructor(kind: string, reason: string) {
    super(422, 'vmm_unavailable', `this host cannot run ${kind}: ${reason}`, { field: 'body.vmm' });
  }
}

export type BootStep = 'images' | 'disk' | 'rootfs' | 'guest-tools' | 'network' | 'launch';

/** A boot that failed at `step` (500, 422 or 502: see the catalogue in @nqvm/api); rootfs steps carry the preparation step too. */
export class BootFailed extends AgentError {
  constructor(
    readonly step: BootStep,
    cause: unknown,
    status = 500,
  ) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    // One code, one status: a spec that cannot boot is `_refused` (422), images out of reach `_unavailable` (502).
    const outcome = status === 422 ? 'refused' : status === 502 ? 'unavailable' : 'failed';
    super(status, `boot_${step.replace('-', '_')}_${outcome}`, `boot failed at ${step}: ${msg}`, { step });
  }
}
