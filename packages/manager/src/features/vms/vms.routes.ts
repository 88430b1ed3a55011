import { api, type Template } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { DomainError, Forbidden, Unprocessable } from '../../domain/errors.ts';
import { mount, mountJson } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import { checkId, createIn, visibleProjects } from '../../http/scope.ts';
import type { VmUpdates } from './vm-update.ts';
import type { VmsService } from './vms.service.ts';

export function vmsRoutes(app: FastifyInstance, authn: Authenticator, vms: VmsService, updates: VmUpdates): void {
  mount(app, authn, api.vms.create, async ({ body, principal }) => {
    const projectId = await createIn(authn, principal, body.project_id, 'vm:write');
    return vms.create(body, actorOf(principal), { projectId });
  });
  mountJson(app, authn, api.vms.list, async ({ query, principal }) =>
    vms.listJson({
      projects: visibleProjects(principal),
      projectId: query.project_id,
      search: query.search,
      state: query.state,
      hostId: query.host_id,
      tag: query.tag,
      owner: query.owner,
      environment: query.environment,
      limit: query.limit,
      cursor: query.cursor,
      sort: query.sort,
    }),
  );
  mount(app, authn, api.vms.get, async ({ params }) => vms.get(params.id));
  mount(app, authn, api.vms.bulk, async ({ body, principal }) => {
    const actor = actorOf(principal);
    const results = await Promise.all(
      body.ids.map(async (id) => {
        try {
          await checkId(authn, principal, api.vms.get.path, id, 'vm:write');
          const vm = body.action === 'delete' ? await vms.delete(id, actor) : await vms.action(id, body.action, actor);
          return { id, ok: true, state: vm.state };
        } catch (err) {
          if (!(err instanceof DomainError)) throw err;
          return { id, ok: false, code: err.code, detail: err.message };
        }
      }),
    );
    return { results };
  });
  mount(app, authn, api.vms.update, async ({ params, body, principal }) =>
    updates.update(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.vms.delete, async ({ params, principal }) => vms.delete(params.id, actorOf(principal)));
  mount(app, authn, api.vms.wait, async ({ params, query }) => vms.wait(params.id, query.state, query.timeout ?? 60));
  mount(app, authn, api.vms.stop, async ({ params, body, principal }) =>
    vms.action(params.id, 'stop', actorOf(principal), { force: body?.force === true }),
  );
  for (const action of ['start', 'pause', 'resume', 'ctrlAltDel'] as const) {
    const name = action === 'ctrlAltDel' ? 'ctrl-alt-del' : action;
    mount(app, authn, api.vms[action], async ({ params, principal }) =>
      vms.action(params.id, name, actorOf(principal)),
    );
  }

  mount(app, authn, api.agentCallbacks.vmExit, async ({ params, body }) => {
    await vms.handleExit(params.id, body);
    return { ok: true as const };
  });
  mount(app, authn, api.agentCallbacks.guestIp, async ({ params, body, principal }) => {
    if (principal.kind !== 'guest' || principal.vmId !== params.id) throw new Forbidden('not this VM');
    await vms.guestReport(params.id, body);
    return { ok: true as const };
  });
}

/** Template instantiation: the template's spec, the request's overrides on top, then a normal create. */
export function instantiateRoute(
  app: FastifyInstance,
  authn: Authenticator,
  vms: VmsService,
  templates: { get(id: string): Promise<Template> },
): void {
  mount(app, authn, api.vms.instantiateTemplate, async ({ params, body, principal }) => {
    const t = await templates.get(params.id);
    const projectId = await createIn(authn, principal, body.overrides?.project_id, 'vm:write');
    const { drives, nics, metadata, network, ...spec } = t.spec;
    // Extra drives, extra NICs and metadata are applied by the device features; refuse rather than drop them.
    for (const [field, v] of Object.entries({ drives, nics, metadata }))
      if (v && (Array.isArray(v) ? v.length : Object.keys(v).length))
        throw new Unprocessable(
          'template_field_unsupported',
          `template ${field} cannot be instantiated yet`,
          `spec.${field}`,
        );
    const req = { ...spec, ...(network ? { network } : {}), ...(body.overrides ?? {}), name: body.name };
    // An override naming an image (`rootfs_image: "name:tag"`) replaces the template's id for that kind.
    for (const kind of ['kernel', 'initrd', 'rootfs'] as const)
      if (body.overrides?.[`${kind}_image`] !== undefined && body.overrides[`${kind}_image_id`] === undefined)
        delete req[`${kind}_image_id`];
    return vms.create(req, actorOf(principal), { templateId: t.id, projectId });
  });
}
