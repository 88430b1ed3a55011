import type {} from '@fastify/websocket';
import { api, type Event, wsRoutes } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { authHook, mountJson } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import { visibleProjects } from '../../http/scope.ts';
import type { EventsService } from './events.service.ts';

export function eventsRoutes(app: FastifyInstance, authn: Authenticator, events: EventsService): void {
  mountJson(app, authn, api.events.list, async ({ query, principal }) =>
    events.listJson(
      {
        projects: visibleProjects(principal),
        resourceType: query.resource_type,
        resourceId: query.resource_id,
        action: query.action,
        result: query.result,
        actor: query.actor,
        since: query.since ? new Date(query.since) : undefined,
        until: query.until ? new Date(query.until) : undefined,
      },
      query.limit ?? 50,
      query.cursor,
    ),
  );

  // Live stream: backlog after `after`, then every new event; the client resumes with the last id it saw.
  app.get(
    wsRoutes.events.path,
    {
      websocket: true,
      schema: { querystring: wsRoutes.events.query, hide: true },
      onRequest: authHook(wsRoutes.events, authn),
    },
    (socket, req) => {
      const q = req.query as { after?: string; resource_type?: string; resource_id?: string };
      const projects = visibleProjects(req.principal);
      const matches = (e: Event) =>
        (!q.resource_type || e.resource_type === q.resource_type) &&
        (!q.resource_id || e.resource_id === q.resource_id);
      // Live events may arrive out of id order (several writers commit in any order): each is sent once, and none at
      // or before the id the client resumes after.
      const after = q.after ? BigInt(q.after) : -1n;
      let lastSent = after;
      const sent = new Set<string>();
      let pending: Event[] | null = [];
      const send = (e: Event) => {
        const id = BigInt(e.id);
        if (id <= after || sent.has(e.id) || !matches(e)) return;
        sent.add(e.id);
        if (sent.size > 10_000) sent.delete(sent.values().next().value as string);
        if (id > lastSent) lastSent = id;
        socket.send(JSON.stringify({ type: 'event', event: e }));
      };
      // A member of some projects gets only their events: each live one is checked against the database first.
      const sendVisible = (e: Event) => {
        if (projects === null) return send(e);
        if (!matches(e)) return;
        events.visibleIn(e, projects).then(
          (ok) => ok && socket.readyState === socket.OPEN && send(e),
          (err) => req.log.warn({ err }, 'event visibility check failed'),
        );
      };
      const unsubscribe = events.subscribe((e) => (pending ? pending.push(e) : sendVisible(e)));
      socket.on('close', unsubscribe);
      const backlog = q.after
        ? events.after({ resourceType: q.resource_type, resourceId: q.resource_id, projects }, q.after)
        : Promise.resolve([]);
      backlog
        .then((rows) => {
          rows.forEach(send);
          const queued = pending ?? [];
          pending = null;
          queued.forEach(sendVisible);
          socket.send(JSON.stringify({ type: 'ready', after: lastSent < 0n ? null : lastSent.toString() }));
        })
        .catch((err) => {
          req.log.error({ err }, 'events backlog failed');
          socket.close(1011, 'backlog failed');
        });
    },
  );
}
