import { NqvmClient } from '@nqvm/api';

/** Where the guest agent listens inside every VM (the rootfs plan writes this port). */
export const GUEST_AGENT_PORT = 9000;

/**
 * A client for one guest agent's routes (`guestApi.agent` in `@nqvm/api`) at `ip`, with the VM token when the
 * route needs it. `ip` must already be checked to be a literal IPv4 address: it becomes the URL's host.
 */
export function guestAgentClient(
  ip: string,
  opts: { token?: string; port?: number; fetch?: typeof fetch } = {},
): NqvmClient {
  return new NqvmClient({
    baseUrl: `http://${ip}:${opts.port ?? GUEST_AGENT_PORT}`,
    ...(opts.token ? { token: opts.token } : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}
