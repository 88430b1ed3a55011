import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { NotFound, Unauthorized } from '../../domain/errors.ts';
import { mount, SESSION_COOKIE } from '../../http/mount.ts';
import { type Authenticator, actorOf, type Principal, permissionsOf } from '../../http/principal.ts';
import type { EventsService } from '../events/events.service.ts';
import type { AuthService } from './auth.service.ts';

function userOf(p: Principal) {
  if (p.kind !== 'user') throw new Unauthorized();
  return p;
}

export function authRoutes(app: FastifyInstance, authn: Authenticator, auth: AuthService, events: EventsService): void {
  mount(app, authn, api.auth.login, async ({ body, req, reply }) => {
    try {
      const res = await auth.login(body.username, body.password, req.ip);
      reply.setCookie(SESSION_COOKIE, res.token, {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: req.protocol === 'https',
        expires: new Date(res.expires_at),
      });
      await events.record({ actor: `user:${res.user.username}`, resourceType: 'session', action: 'login' });
      return res;
    } catch (err) {
      await events.record({
        actor: 'anonymous',
        resourceType: 'session',
        action: 'login',
        result: 'error',
        detail: { username: body.username, ip: req.ip },
      });
      throw err;
    }
  });

  mount(app, authn, api.auth.logout, async ({ principal, reply }) => {
    await auth.logout(principal);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    await events.record({ actor: actorOf(principal), resourceType: 'session', action: 'logout' });
    return { ok: true as const };
  });

  mount(app, authn, api.auth.me, async ({ principal }) => {
    const u = userOf(principal);
    return { id: u.userId, username: u.username, role: u.role, auth: u.via, permissions: permissionsOf(u) };
  });

  mount(app, authn, api.auth.changePassword, async ({ principal, body, req }) => {
    await auth.changePassword(principal, body.current_password, body.new_password, req.ip);
    await events.record({
      actor: actorOf(principal),
      resourceType: 'user',
      resourceId: userOf(principal).userId,
      action: 'change_password',
    });
    return { ok: true as const };
  });

  mount(app, authn, api.auth.listTokens, async ({ principal }) => ({
    items: await auth.listTokens(userOf(principal).userId),
  }));

  mount(app, authn, api.auth.createToken, async ({ principal, body }) => {
    if (body.project_id !== undefined && !(await authn.projectExists?.(body.project_id)))
      throw new NotFound('project', body.project_id);
    const created = await auth.createToken(
      userOf(principal),
      body.name,
      body.expires_in_days,
      body.permissions,
      body.project_id,
    );
    await events.record({
      actor: actorOf(principal),
      resourceType: 'token',
      resourceId: created.id,
      action: 'create',
      detail: { name: created.name, expires_at: created.expires_at, permissions: created.permissions },
    });
    return created;
  });

  mount(app, authn, api.auth.deleteToken, async ({ principal, params }) => {
    await auth.deleteToken(userOf(principal).userId, params.id);
    await events.record({ actor: actorOf(principal), resourceType: 'token', resourceId: params.id, action: 'revoke' });
  });
}
