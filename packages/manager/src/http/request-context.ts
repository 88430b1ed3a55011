import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance } from 'fastify';

const context = new AsyncLocalStorage<{ requestId: string }>();

/**
 * Keeps the request id for the code a handler runs (and the background work it starts), so calls to host
 * agents forward it. Entered in preHandler: from there on the handler runs inside it (body parsing is done).
 */
export function installRequestContext(app: FastifyInstance): void {
  app.addHook('preHandler', (req, _reply, done) => context.run({ requestId: String(req.id) }, done));
}

/** The id of the API request this code runs for, if any. */
export function currentRequestId(): string | undefined {
  return context.getStore()?.requestId;
}
