import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import { usageCsv } from '../usage/usage.meter.ts';
import type { UsageService } from '../usage/usage.service.ts';
import type { QuotasService } from './quotas.service.ts';

export function quotasRoutes(app: FastifyInstance, authn: Authenticator, quotas: QuotasService, usage: UsageService) {
  mount(app, authn, api.quotas.get, async ({ params }) => quotas.get(params.id));
  mount(app, authn, api.quotas.put, async ({ params, body, principal }) =>
    quotas.put(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.quotas.usage, async ({ params, query, req, reply }) => {
    const u = await usage.usage(params.id, query);
    if (!wantsCsv(req.headers.accept)) return u;
    await reply
      .code(200)
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="usage-${params.id}.csv"`)
      .send(usageCsv(u));
    return u;
  });
}

/** CSV when the client prefers it to JSON (a plain `Accept: text/csv`). */
function wantsCsv(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  const csv = types.indexOf('text/csv');
  const json = types.findIndex((t) => t === 'application/json' || t === '*/*');
  return csv !== -1 && (json === -1 || csv < json);
}
