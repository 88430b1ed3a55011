import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where `npm run build -w @nqvm/web` writes the console, seen from this source file or from a bin bundled into `packages/<bin>/dist/`. */
export const DEFAULT_WEB_ROOT = resolve(
  dirname(fileURLToPath(import.meta.url)),
  import.meta.url.endsWith('.ts') ? '../../../../web/dist' : '../../web/dist',
);

// Paths that belong to the API or the manager itself: never answered with the SPA's index.html.
const SERVER_PATHS = /^\/(v1|docs|agent|health|ready|metrics)(\/|$)/;
const HASHED_ASSET = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>nqvm</title></head>
<body><main><h1>nqvm</h1><p>The web console is not built. Run <code>npm run build -w @nqvm/web</code> and reload.</p>
<p>The API is at <a href="/docs">/docs</a>.</p></main></body></html>`;

/**
 * Serves the built web console at `/`: hashed assets with a one-year immutable cache, everything else
 * (client routes such as /vms/123) falls back to index.html, which is never cached.
 */
export async function webConsole(app: FastifyInstance, opts: { root?: string } = {}): Promise<void> {
  const root = opts.root ?? DEFAULT_WEB_ROOT;
  await app.register(fastifyStatic, { root, serve: false });

  app.get('/*', async (req, reply) => {
    const path = decodeURIComponent(req.url.split('?')[0] ?? '/');
    if (SERVER_PATHS.test(path)) return reply.callNotFound();
    if (!existsSync(resolve(root, 'index.html')))
      return reply.code(503).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT);
    if (HASHED_ASSET.test(path))
      return reply.sendFile(path.slice(1), { maxAge: '365d', immutable: true, cacheControl: true });
    const file = path.slice(1);
    if (file && !file.includes('..') && /\.[a-z0-9]+$/i.test(file) && existsSync(resolve(root, file)))
      return reply.header('cache-control', 'no-cache').sendFile(file, { cacheControl: false });
    if (/\.[a-z0-9]+$/i.test(file)) return reply.callNotFound();
    return reply
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .sendFile('index.html', { cacheControl: false });
  });
}
