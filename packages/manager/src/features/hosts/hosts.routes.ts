import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { EventsService } from '../events/events.service.ts';
import type { HostsService } from './hosts.service.ts';
import type { JoinTokens } from './join-tokens.ts';

export function hostsRoutes(
  app: FastifyInstance,
  authn: Authenticator,
  hosts: HostsService,
  joinTokens: JoinTokens,
  events: EventsService,
) {
  mount(app, authn, api.hosts.register, async ({ body, req }) => {
    try {
      const res = await hosts.register(body);
      await events.record({
        actor: `host:${res.id}`,
        resourceType: 'host',
        resourceId: res.id,
        action: 'register',
        detail: { name: body.name, addr: body.addr },
      });
      return res;
    } catch (err) {
      await events.record({
        actor: 'anonymous',
        resourceType: 'host',
        action: 'register',
        result: 'error',
        detail: { name: body.name, ip: req.ip },
      });
      throw err;
    }
  });

  mount(app, authn, api.hosts.heartbeat, async ({ params, body }) => {
    const { addrChanged } = await hosts.heartbeat(params.id, body);
    if (addrChanged)
      await events.record({
        actor: `host:${params.id}`,
        resourceType: 'host',
        resourceId: params.id,
        action: 'addr_changed',
        detail: addrChanged,
      });
    return { ok: true as const };
  });

  mount(app, authn, api.hosts.certificate, async ({ params, body }) => {
    const cert = await hosts.certificate(params.id, body.public_key);
    await events.record({
      actor: `host:${params.id}`,
      resourceType: 'host',
      resourceId: params.id,
      action: 'certificate',
      detail: { not_after: cert.not_after },
    });
    return cert;
  });

  mount(app, authn, api.hosts.list, async ({ query }) => hosts.list(query.limit, query.cursor));
  mount(app, authn, api.hosts.get, async ({ params }) => hosts.get(params.id));
  mount(app, authn, api.hosts.delete, async ({ params, principal }) => {
    await hosts.delete(params.id);
    await events.record({ actor: actorOf(principal), resourceType: 'host', resourceId: params.id, action: 'delete' });
  });

  mount(app, authn, api.joinTokens.create, async ({ body, principal }) => {
    const created = await joinTokens.create(body, actorOf(principal));
    await events.record({
      actor: actorOf(principal),
      resourceType: 'join_token',
      resourceId: created.id,
      action: 'create',
      detail: { expires_at: created.expires_at, description: created.description },
    });
    return created;
  });
  mount(app, authn, api.joinTokens.list, async ({ query }) => joinTokens.list(query.limit, query.cursor));
  mount(app, authn, api.joinTokens.delete, async ({ params, principal }) => {
    await joinTokens.delete(params.id);
    await events.record({
      actor: actorOf(principal),
      resourceType: 'join_token',
      resourceId: params.id,
      action: 'delete',
    });
  });
}
