import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type ConsoleSize, parseConsoleSize } from './console-size';
import { parseInvoke, parseLoad, RequestRefused } from './function-request';
import { type FunctionRunner, RunnerRefused } from './function-runner';
import { type NewIdentity, parseIdentity } from './identity';
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
  /** Accepts a new identity from the host agent (clones restored from a snapshot); absent without a config. */
  identity?: IdentityHandler;
  /** Sets the serial console's window size for the host agent; absent without a config (no token to check). */
  consoleSize?: ConsoleSizeHandler;
  /** Reports to the host agent now when it asks (a restored instance it has just registered); absent without a config. */
  reportNow?: ReportNowHandler;
  /** The function runner (`/function/load`, `/function/invoke`); absent without a config. */
  functions?: FunctionsHandler;
}

export interface FunctionsHandler {
  token(): string;
  /** The host agent's address: the only source these calls are taken from. */
  host(): string;
  runner: Pick<FunctionRunner, 'load' | 'invoke'>;
}

/** The function routes' bodies: up to 1 MiB of code or event, escaped in JSON. */
const FUNCTION_BODY_LIMIT = 8 * 1024 * 1024;

export interface ReportNowHandler {
  token(): string;
  /** The host agent's address: the only source these calls are taken from. */
  host(): string;
  /** Starts a report at once (the reporter's kick). */
  kick(): void;
}

export interface ConsoleSizeHandler {
  token(): string;
  /** The host agent's address: the only source these calls are taken from. */
  host(): string;
  /** Resolves with the tty it resized. */
  apply(size: ConsoleSize): Promise<string>;
}

export interface IdentityHandler {
  /** The token the host agent must present (the one this guest currently holds). */
  token(): string;
  /** The host agent's address: another guest (a clone holding the same token) must not re-address this one. */
  host(): string;
  /** Called after the 202 went out: the address changes under the connection. */
  apply(id: NewIdentity): Promise<void>;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > limit) req.destroy(new Error('body too large'));
      else parts.push(b);
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const ANSWERED = Symbol('answered');

/** The peer's address without the IPv4-mapped prefix. */
const peerOf = (req: IncomingMessage) => (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');

/**
 * POST from the host agent's address with the VM token as a bearer and a JSON body; anything else is answered here
 * (405, 403, 401, 400).
 */
async function authorizedJson(
  req: IncomingMessage,
  res: ServerResponse,
  h: { token(): string; host(): string },
  limit = 16 * 1024,
): Promise<unknown> {
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    sendJson(res, 405, { error: 'method_not_allowed' });
    return ANSWERED;
  }
  if (peerOf(req) !== h.host()) {
    sendJson(res, 403, { error: 'forbidden', message: 'only the host agent may call this' });
    return ANSWERED;
  }
  const token = h.token();
  const auth = req.headers.authorization ?? '';
  if (!auth.startsWith('Bearer ') || !sameSecret(auth.slice(7).trim(), token)) {
    sendJson(res, 401, { error: 'unauthorized' });
    return ANSWERED;
  }
  try {
    return JSON.parse(await readBody(req, limit));
  } catch {
    sendJson(res, 400, { error: 'invalid_json' });
    return ANSWERED;
  }
}

async function handleIdentity(req: IncomingMessage, res: ServerResponse, h: IdentityHandler, logger: Logger) {
  const raw = await authorizedJson(req, res, h);
  if (raw === ANSWERED) return;
  const id = parseIdentity(raw);
  if (typeof id === 'string') return sendJson(res, 400, { error: 'invalid_identity', message: id });
  res.once('finish', () => {
    h.apply(id).catch((err: unknown) =>
      logger.error('identity_failed', { error: err instanceof Error ? err.message : String(err) }),
    );
  });
  sendJson(res, 202, { ok: true });
}

async function handleConsoleSize(req: IncomingMessage, res: ServerResponse, h: ConsoleSizeHandler, logger: Logger) {
  const raw = await authorizedJson(req, res, h);
  if (raw === ANSWERED) return;
  const size = parseConsoleSize(raw);
  if (typeof size === 'string') return sendJson(res, 400, { error: 'invalid_console_size', message: size });
  try {
    sendJson(res, 200, { ok: true, tty: await h.apply(size) });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.error('console_size_failed', { error: message });
    sendJson(res, 500, { error: 'console_size_failed', message });
  }
}

async function handleReportNow(req: IncomingMessage, res: ServerResponse, h: ReportNowHandler) {
  const raw = await authorizedJson(req, res, h);
  if (raw === ANSWERED) return;
  h.kick();
  sendJson(res, 202, { ok: true });
}

/** problem+json as the host agent relays it (its catalogued code, `field`, the handler's `error`). */
function sendProblem(res: ServerResponse, status: number, code: string, detail: string, extra = {}): void {
  const payload = JSON.stringify({
    ...extra,
    type: `https://nqvm.dev/problems/${code}`,
    title: code,
    status,
    code,
    detail,
  });
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload);
}

async function handleFunction(
  req: IncomingMessage,
  res: ServerResponse,
  h: FunctionsHandler,
  what: 'load' | 'invoke',
  logger: Logger,
) {
  const raw = await authorizedJson(req, res, h, FUNCTION_BODY_LIMIT);
  if (raw === ANSWERED) return;
  try {
    const answer = what === 'load' ? await h.runner.load(parseLoad(raw)) : await h.runner.invoke(parseInvoke(raw));
    sendJson(res, 200, answer);
  } catch (err) {
    if (err instanceof RequestRefused) return sendProblem(res, err.status, err.code, err.message, { field: err.field });
    if (err instanceof RunnerRefused)
      return sendProblem(res, err.status, err.code, err.message, err.error ? { error: err.error } : {});
    const message = err instanceof Error ? err.message : String(err);
    logger.error('function_failed', { what, error: message });
    sendProblem(res, 500, 'internal', message);
  }
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

/** The HTTP surface: GET /health, GET /metrics, POST /identity, /report and /console-size; everything else is a JSON 404 or 405. */
export function createGuestServer(opts: GuestServerOptions): Server {
  const now = opts.now ?? Date.now;
  const startedAt = now();
  const version = opts.version ?? GUEST_AGENT_VERSION;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/identity' && opts.identity) {
      void handleIdentity(req, res, opts.identity, opts.logger);
      return;
    }
    if (path === '/report' && opts.reportNow) {
      void handleReportNow(req, res, opts.reportNow);
      return;
    }
    if ((path === '/function/load' || path === '/function/invoke') && opts.functions) {
      void handleFunction(req, res, opts.functions, path === '/function/load' ? 'load' : 'invoke', opts.logger);
      return;
    }
    if (path === '/console-size' && opts.consoleSize) {
      void handleConsoleSize(req, res, opts.consoleSize, opts.logger);
      return;
    }
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
  // Short timeouts: only the host agent and manager poll this, and a stuck client must not pin memory. The
  // request timeout covers receiving the request only; an invocation's answer may take up to its own timeout.
  server.requestTimeout = 30_000;
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
