import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Logger } from './log';
import type { MetricsSampler } from './metrics';
import type { GuestHealth } from './types';
import { GUEST_AGENT_VERSION } from './version';

export interface GuestServerOptions {
  sampler: MetricsSampler;
  logger: Logger;
  version?: string;
  /** Milliseconds since the epoch; the agent's own start time is measured with it. */
  now?: () => number;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload);
}

/** The HTTP surface: GET /health and GET /metrics; everything else is a JSON 404 or 405. */
export function createGuestServer(opts: GuestServerOptions): Server {
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const version = opts.version ?? GUEST_AGENT_VERSION;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/health' && path !== '/metrics') {
      sendJson(res, 404, { error: 'not_found', path });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: 'method_not_allowed' });
      return;
    }
    if (path === '/health') {
      const body: GuestHealth = { status: 'ok', version, uptime_s: Math.floor((now() - startedAt) / 1000) };
      sendJson(res, 200, body);
      return;
    }
    opts.sampler.collect().then(
      (metrics) => sendJson(res, 200, metrics),
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        opts.logger.error('metrics_failed', { error: message });
        sendJson(res, 500, { error: 'metrics_unavailable', message });
      },
    );
  });
  // Short timeouts: only the host agent and manager poll this, and a stuck client must not pin memory.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  return server;
}

/** Samples /proc/stat every `intervalMs` so /metrics never waits; returns a stop function. */
export function startCpuSampling(sampler: MetricsSampler, logger: Logger, intervalMs = 1000): () => void {
  let failing = false;
  const tick = (): void => {
    sampler.sampleCpu().then(
      () => {
        failing = false;
      },
      (err: unknown) => {
        // Log the first failure of a run only, not one line per second.
        if (!failing) logger.error('cpu_sample_failed', { error: err instanceof Error ? err.message : String(err) });
        failing = true;
      },
    );
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export function listen(server: Server, port: number, host = '0.0.0.0'): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
