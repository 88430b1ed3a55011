/**
 * Domain errors are typed values; the HTTP edge maps them to problem+json once (http/problem.ts).
 * `code` is stable and documented; `field` names the offending input where there is one.
 */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFound extends DomainError {
  constructor(resource: string, id?: string) {
    super(404, `${resource}_not_found`, id ? `${resource} ${id} not found` : `${resource} not found`);
  }
}

export class Conflict extends DomainError {
  constructor(code: string, message: string, field?: string, extra?: Record<string, unknown>) {
    super(409, code, message, field, extra);
  }
}

export class BadRequest extends DomainError {
  constructor(code: string, message: string, field?: string) {
    super(400, code, message, field);
  }
}

export class Unprocessable extends DomainError {
  constructor(code: string, message: string, field?: string) {
    super(422, code, message, field);
  }
}

export class Unauthorized extends DomainError {
  constructor(message = 'authentication required') {
    super(401, 'unauthorized', message);
  }
}

export class Forbidden extends DomainError {
  constructor(message = 'not allowed', field?: string) {
    super(403, 'forbidden', message, field);
  }
}

export class TooManyRequests extends DomainError {
  constructor(message: string, retryAfterS: number) {
    super(429, 'too_many_requests', message, undefined, { retry_after_s: retryAfterS });
  }
}

export class InvalidTransition extends DomainError {
  constructor(action: string, state: string) {
    super(409, 'invalid_transition', `cannot ${action} a VM that is ${state}`, undefined, { state, action });
  }
}

export class NoCapacity extends DomainError {
  constructor(message: string, reasons: Record<string, string>) {
    super(409, 'no_capacity', message, undefined, { hosts: reasons });
  }
}

export class UpstreamError extends DomainError {
  constructor(message: string, extra?: Record<string, unknown>) {
    super(502, 'host_error', message, undefined, extra);
  }
}

export class WaitTimeout extends DomainError {
  constructor(state: string, wanted: string) {
    super(408, 'wait_timeout', `VM is ${state}, not ${wanted}, after the timeout`, 'query.timeout', { state });
  }
}

/** A write that would take a project past its quota (see the quotas feature). */
export class QuotaExceeded extends DomainError {
  constructor(resource: string, limit: number, used: number, requested: number) {
    super(
      409,
      'quota_exceeded',
      `the project's ${resource} quota is ${limit}; ${used} in use, this needs ${requested} more`,
      undefined,
      { resource, limit, used, requested },
    );
  }
}
