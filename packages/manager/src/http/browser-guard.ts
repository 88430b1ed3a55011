import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Forbidden } from '../domain/errors.ts';

// The console is one origin's scripts and styles (xterm adds <style> elements, hence 'unsafe-inline' for styles
// only); its WebSockets are same-origin; nothing may frame it.
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');
// The API docs UI (swagger-ui) brings inline bootstrapping; it still may not be framed or load plugins.
const DOCS_CSP = "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), usb=(), payment=()',
};

/** `https://host:port` as a browser writes it in `Origin`, or undefined when not an http(s) origin. */
export function originOf(raw: string): string | undefined {
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

/** The manager's own origin as the request addressed it: the console is served from there. */
function ownOrigin(req: FastifyRequest): string | undefined {
  const host = req.headers.host;
  return host ? originOf(`${req.protocol}://${host}`) : undefined;
}

/**
 * A browser always sends `Origin` on a WebSocket upgrade; one from another origin (a page on another local
 * port driving a logged-in user's shell) is refused. Clients that are not browsers send none and pass.
 */
export function checkUpgradeOrigin(req: FastifyRequest, allowed: ReadonlySet<string>): void {
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return;
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const o = originOf(origin);
  if (o && (o === ownOrigin(req) || allowed.has(o))) return;
  throw new Forbidden(`WebSocket connections from origin ${JSON.stringify(origin)} are not allowed`);
}

/** Security headers on every response; the console's CSP on everything but the docs UI. */
export function installBrowserGuard(app: FastifyInstance, opts: { allowedOrigins: string[] }): void {
  const allowed = new Set(opts.allowedOrigins);
  app.addHook('onRequest', async (req) => checkUpgradeOrigin(req, allowed));
  app.addHook('onSend', async (req, reply) => {
    for (const [k, v] of Object.entries(HEADERS)) reply.header(k, v);
    reply.header('content-security-policy', /^\/docs(\/|$)/.test(req.url) ? DOCS_CSP : CONSOLE_CSP);
  });
}
