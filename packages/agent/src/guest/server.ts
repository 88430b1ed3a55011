import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { guestApi, type NqvmClient, type ProblemReply, writeProblem } from '@nqvm/api';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { GuestReportRelay, ManagerClient } from '../manager/client.ts';
import { ManagerCallFailed } from '../manager/client.ts';
import { installProblemHandling, mountRoute } from '../mount.ts';
import { guestAgentClient } from './guest-client.ts';
import { RateLimiter } from './rate-limit.ts';

export interface GuestReportRecord {
  at: string;
  remote: string;
  report: GuestReportRelay;
}

export interface GuestEndpointDeps {
  manager: ManagerClient;
  /** The VM's guest token, if the VM lives on this host. */
  tokenOf(vmId: string): string | undefined;
  /** The addresses allocated to the VM's NICs: a report comes from one of them and names one of them. */
  addressesOf(vmId: string): string[];
  /** Reports per VM: `burst` at once, then one every `refillMs` (default 5 and 5 s; a guest reports every 30 s). */
  reportLimit?: { burst: number; refillMs: number };
  /** Requests per source address before any token is checked (default 20, then one a second). */
  sourceLimit?: { burst: number; refillMs: number };
  log: FastifyBaseLogger;
  /** Where guest agents listen inside the VMs. */
  guestAgentPort?: number;
  fetch?: typeof fetch;
}

// The guest agent refuses sizes outside these; a tiny browser pane still gets the nearest size it accepts.
const clamp = (v: number, min: number, max: number) => Math.min(max, Math.max(min, Math.round(v)));

const limited = <R extends ProblemReply>(reply: R, waitMs: number, what: string, requestId: string) =>
  writeProblem(reply, {
    status: 429,
    code: 'too_many_requests',
    detail: `too many ${what}`,
    requestId,
    extra: { retry_after_s: Math.ceil(waitMs / 1000) },
  });

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Guests talk only to their host agent: one listener per bridge on `<gateway>:<port>`, relaying reports to
 * the manager with the guest's own token and keeping the last one per VM. Guests are untrusted: reports are
 * rate-limited per source and per VM, and must come from and name an address allocated to that VM.
 */
export class GuestEndpoints {
  private readonly listeners = new Map<string, Promise<FastifyInstance>>();
  readonly lastReports = new Map<string, GuestReportRecord>();
  private readonly perVm: RateLimiter;
  private readonly perSource: RateLimiter;

  constructor(
    private readonly port: number,
    private readonly deps: GuestEndpointDeps,
  ) {
    const vm = deps.reportLimit ?? { burst: 5, refillMs: 5000 };
    const src = deps.sourceLimit ?? { burst: 20, refillMs: 1000 };
    this.perVm = new RateLimiter(vm.burst, vm.refillMs);
    this.perSource = new RateLimiter(src.burst, src.refillMs);
  }

  /** Listens on `address` (the bridge gateway) unless already listening there. */
  ensure(address: string): Promise<FastifyInstance> {
    let l = this.listeners.get(address);
    if (!l) {
      l = this.listen(address);
      this.listeners.set(address, l);
      l.catch(() => this.listeners.delete(address));
    }
    return l;
  }

  private async listen(address: string): Promise<FastifyInstance> {
    const app = Fastify({
      loggerInstance: this.deps.log,
      bodyLimit: 16 * 1024,
      connectionTimeout: 10_000,
      requestTimeout: 10_000,
      keepAliveTimeout: 5_000,
    });
    installProblemHandling(app);
    // Counted before the body is parsed or the token checked: a flood costs the agent as little as possible.
    app.addHook('onRequest', async (req, reply) => {
      const wait = this.perSource.take(req.ip);
      if (wait > 0) return limited(reply, wait, 'requests from this address', String(req.id));
    });
    app.register(async (scope) => this.routes(scope));
    await app.listen({ host: address, port: this.port });
    return app;
  }

  /** The guest endpoint's routes (`guestApi.endpoint`), served on every bridge listener. */
  routes(app: FastifyInstance): void {
    mountRoute(app, guestApi.endpoint.report, async (req, reply) => {
      const id = req.params.id;
      const auth = req.headers.authorization;
      const token = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : '';
      const expected = this.deps.tokenOf(id);
      const requestId = String(req.id);
      if (!expected || !token || !sameToken(token, expected))
        return writeProblem(reply, {
          status: 401,
          code: 'unauthorized',
          detail: 'unknown VM or wrong token',
          requestId,
        });
      const allocated = this.deps.addressesOf(id);
      const source = req.ip.replace(/^::ffff:/, '');
      if (!allocated.includes(source) || !allocated.includes(req.body.ip))
        return writeProblem(reply, {
          status: 403,
          code: 'guest_address_mismatch',
          detail: 'a report must come from and name an address allocated to the VM',
          field: allocated.includes(source) ? 'body.ip' : undefined,
          requestId,
        });
      // After the cheap checks: a report that would be refused anyway does not use up the VM's allowance.
      const wait = this.perVm.take(id);
      if (wait > 0) return limited(reply, wait, 'reports from this VM', requestId);
      const { ip, hostname, ready, agent_version, boot_id } = req.body;
      const report: GuestReportRelay = {
        ip,
        ...(hostname !== undefined ? { hostname } : {}),
        ...(ready !== undefined ? { ready } : {}),
        ...(agent_version !== undefined ? { agent_version } : {}),
        ...(boot_id !== undefined ? { boot_id } : {}),
      };
      this.lastReports.set(id, { at: new Date().toISOString(), remote: req.ip, report });
      try {
        await this.deps.manager.relayGuestReport(id, token, report);
      } catch (e) {
        req.log.warn({ err: e, vm_id: id }, 'relaying a guest report failed');
        const detail = (e as Error).message;
        // The manager refusing the guest's token is the guest's 401; anything else is the relay failing.
        if (e instanceof ManagerCallFailed && (e.status === 401 || e.status === 403))
          return writeProblem(reply, { status: 401, code: 'unauthorized', detail, requestId });
        return writeProblem(reply, { status: 502, code: 'relay_failed', detail, requestId });
      }
      return { ok: true as const };
    });
  }

  /**
   * A client for the VM's guest agent with its token, at the address the guest last reported (or, with
   * `allocated`, the VM's first allocated address before any report); undefined without a token or an address.
   */
  clientOf(vmId: string, allocated = true): NqvmClient | undefined {
    const ip = this.lastReports.get(vmId)?.report.ip ?? (allocated ? this.deps.addressesOf(vmId)[0] : undefined);
    const token = this.deps.tokenOf(vmId);
    if (!ip || isIP(ip) !== 4 || !token) return undefined;
    return guestAgentClient(ip, {
      token,
      ...(this.deps.guestAgentPort ? { port: this.deps.guestAgentPort } : {}),
      ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
    });
  }

  /**
   * Sets the VM's serial console size through its guest agent (`POST /console-size` with the VM token), at the
   * address the guest last reported. Best effort: failures are logged at debug and never thrown.
   */
  async setConsoleSize(vmId: string, size: { cols: number; rows: number }): Promise<void> {
    const guest = this.clientOf(vmId, false);
    if (!guest) {
      this.deps.log.debug({ vm_id: vmId }, 'console size not sent: no guest address or token yet');
      return;
    }
    const body = { cols: clamp(size.cols, 20, 500), rows: clamp(size.rows, 5, 300) };
    try {
      await guest.call(guestApi.agent.consoleSize, { body });
    } catch (err) {
      this.deps.log.debug({ err, vm_id: vmId, ...body }, 'setting the console size in the guest failed');
    }
  }

  async close(): Promise<void> {
    const all = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(all.map((p) => p.then((a) => a.close()).catch(() => undefined)));
  }
}
