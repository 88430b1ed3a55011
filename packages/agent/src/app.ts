import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import websocket from '@fastify/websocket';
import { agentApi } from '@nqvm/api';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { deviceRoutes } from './devices/devices.routes.ts';
import { type FunctionRelayDeps, functionRoutes } from './functions/function-relay.ts';
import { logsRoutes } from './logs/logs.routes.ts';
import { type AgentTls, clientCertRefusal } from './manager/tls.ts';
import type { AgentMetrics } from './metrics/prometheus.ts';
import type { MmdsService } from './mmds/mmds.service.ts';
import { installProblemHandling, mountRoute, problem } from './mount.ts';
import type { Observe } from './observe/observe.ts';
import { snapshotRoutes } from './snapshots/snapshots.routes.ts';
import type { SnapshotService } from './snapshots/snapshots.service.ts';
import { vmRoutes } from './vms/vms.routes.ts';
import type { VmService } from './vms/vms.service.ts';

export interface AgentAppDeps {
  vms: VmService;
  /** The current host secret (it changes when the agent re-registers); undefined until registered. */
  secret(): string | undefined;
  log: Logger;
  /** More feature routes (snapshots, MMDS, logs), mounted behind the host-secret check. */
  routes?: ((api: FastifyInstance) => void)[];
  /** Prometheus metrics: counted on every answer, served at `/metrics` behind the host secret. */
  metrics?: AgentMetrics;
  /**
   * False while the agent starts (its identity loaded, its running VMs adopted): requests then get 503 agent_starting,
   * which the manager retries, never an answer about VMs it has not adopted yet.
   */
  ready?: () => boolean;
  /**
   * Serve over TLS and let only the manager's client certificate call the API (`/metrics` keeps the host secret
   * alone, for scrapers). `identity` is absent until the manager issued one: `app.server.setSecureContext` then.
   */
  tls?: { identity: AgentTls | undefined };
}

/** The manager's request id (`x-request-id`) when it sent a sane one, so one id is logged on both sides. */
function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const h = req.headers['x-request-id'];
  return typeof h === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(h) ? h : randomUUID();
}

export interface FeatureServices {
  snapshots: SnapshotService;
  mmds: MmdsService;
  observe: Pick<Observe, 'routes'>;
  /** The function runner's routes relay to guest agents. */
  functions: FunctionRelayDeps;
  dataDir: string;
}

/** The routes of the features beyond VMs and devices: snapshots and MMDS, logs, metrics and the console. */
export function featureRoutes(f: FeatureServices): ((api: FastifyInstance) => void)[] {
  return [
    (api) => snapshotRoutes(api, f.snapshots, f.mmds),
    (api) => logsRoutes(api, f.dataDir),
    (api) => f.observe.routes(api),
    (api) => functionRoutes(api, f.functions),
  ];
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Bearer check against the host secret, compared as hashes so length and content leak nothing. */
function authorized(req: FastifyRequest, secret: string | undefined): boolean {
  const h = req.headers.authorization;
  if (!secret || !h?.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(h.slice(7).trim()), digest(secret));
}

/** The agent's HTTP API (`/agent/v1`, `agentApi` in `@nqvm/api`), called by the manager with the per-host secret. */
export function buildAgentApp(d: AgentAppDeps) {
  const https = d.tls
    ? {
        https: {
          requestCert: true,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2' as const,
          ...(d.tls.identity ?? {}),
        },
      }
    : {};
  const app = Fastify({
    loggerInstance: d.log,
    bodyLimit: 1024 * 1024,
    genReqId: requestId,
    requestIdHeader: false,
    ...https,
  }) as unknown as FastifyInstance;
  if (d.metrics) app.addHook('onResponse', d.metrics.onResponse);
  // Registered once at the root: feature plugins that open WebSockets share its one upgrade handler.
  app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  installProblemHandling(app);

  app.register(async (open) => mountRoute(open, agentApi.vms.health, async () => ({ ok: true as const })));

  app.register(async (api) => {
    api.addHook('onRequest', async (req, reply) => {
      const refused = d.tls && req.routeOptions.url !== '/metrics' && clientCertRefusal(req.raw.socket as TLSSocket);
      if (refused) return problem(reply, req, 403, 'client_certificate_required', refused);
      if (d.ready && !d.ready()) {
        reply.header('retry-after', '1');
        return problem(reply, req, 503, 'agent_starting', 'the agent is starting: it adopts its running VMs first');
      }
      if (!authorized(req, d.secret()))
        return problem(reply, req, 401, 'unauthorized', 'a valid host secret is required');
    });
    vmRoutes(api, d.vms);
    deviceRoutes(api, { vms: d.vms });
    d.metrics?.routes(api);
    for (const add of d.routes ?? []) add(api);
  });
  return app;
}
