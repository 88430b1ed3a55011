import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { guestApi, writeProblem } from '@nqvm/api';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { GuestReportRelay, ManagerClient } from '../manager/client.ts';
import { ManagerCallFailed } from '../manager/client.ts';
import { installProblemHandling, mountRoute } from '../mount.ts';
import { guestAgentClient } from './guest-client.ts';

export interface GuestReportRecord {
  at: string;
  remote: string;
  report: GuestReportRelay;
}

export interface GuestEndpointDeps {
  manager: ManagerClient;
  /** The VM's guest token, if the VM lives on this host. */
  tokenOf(vmId: string): string | undefined;
  log: FastifyBaseLogger;
  /** Where guest agents listen inside the VMs. */
  guestAgentPort?: number;
  fetch?: typeof fetch;
}

// The guest agent refuses sizes outside these; a tiny browser pane still gets the nearest size it accepts.
const clamp = (v: number, min: number, max: number) => Math.min(max, Math.max(min, Math.round(v)));

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Guests talk only to their host agent: one listener per bridge on `<gateway>:<port>`, relaying reports to
 * the manager with the guest's own token and keeping the last one per VM.
 */
export class GuestEndpoints {
  private readonly listeners = new Map<string, Promise<FastifyInstance>>();
  readonly lastReports = new Map<string, GuestReportRecord>();

  constructor(
    private readonly port: number,
    private readonly deps: GuestEndpointDeps,
  ) {}

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
    const app = Fastify({ loggerInstance: this.deps.log, bodyLimit: 16 * 1024 });
    installProblemHandling(app);
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
   * Sets the VM's serial console size through its guest agent (`POST /console-size` with the VM token), at the
   * address the guest last reported. Best effort: failures are logged at debug and never thrown.
   */
  async setConsoleSize(vmId: string, size: { cols: number; rows: number }): Promise<void> {
    const ip = this.lastReports.get(vmId)?.report.ip;
    const token = this.deps.tokenOf(vmId);
    if (!ip || isIP(ip) !== 4 || !token) {
      this.deps.log.debug({ vm_id: vmId }, 'console size not sent: no guest address or token yet');
      return;
    }
    const body = { cols: clamp(size.cols, 20, 500), rows: clamp(size.rows, 5, 300) };
    try {
      const guest = guestAgentClient(ip, {
        token,
        ...(this.deps.guestAgentPort ? { port: this.deps.guestAgentPort } : {}),
        ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
      });
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
