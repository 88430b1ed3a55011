import type { FastifyInstance } from 'fastify';
import { TooManyRequests } from '../../domain/errors.ts';
import type { RateLimiter } from './ratelimit.service.ts';

/**
 * Counts every API request of the plugin it is installed in once its caller is known (after the route's auth hook),
 * before its input is validated, so malformed floods count too. Every counted answer carries the RateLimit headers;
 * one over the limit is a 429 with Retry-After.
 */
export function installRateLimits(app: FastifyInstance, limiter: RateLimiter): void {
  app.addHook('preValidation', async (req, reply) => {
    const v = await limiter.check(req.principal, req.ip);
    if (!v) return;
    reply.header('ratelimit-limit', v.limit);
    reply.header('ratelimit-remaining', v.remaining);
    reply.header('ratelimit-reset', v.resetS);
    reply.header('ratelimit-policy', `${v.limit};w=${v.windowS}`);
    if (!v.exceeded) return;
    reply.header('retry-after', v.resetS);
    throw new TooManyRequests(
      `more than ${v.limit} requests per ${v.windowS} s for this ${v.scope}; retry in ${v.resetS} s`,
      v.resetS,
    );
  });
}
