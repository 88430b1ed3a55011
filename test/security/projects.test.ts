import { allRoutes, ROLE_PERMISSIONS, wsRoutes } from '@nqvm/api';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../packages/manager/src/db/schema.ts';
import { PasswordHasher } from '../../packages/manager/src/security/passwords.ts';
import { DB_KINDS, TEST_PASSWORD_LOG2N } from '../../packages/manager/test/support/harness.ts';
import { expectProblem, startTarget, type Target, urlOf } from './support.ts';

/**
 * Projects over the route table: the stand-in target's VMs and images live in `default` (project A); a user of
 * another project (B) gets 404 on every route naming one of them, exactly like a missing one, and sees none of them
 * in lists; members of A with the roles owner, operator and viewer get 403 exactly where their role lacks the
 * route's permission. Then the isolation cases one by one (snapshot, clone, instantiate, create, events, operations).
 */
describe.each(DB_KINDS)('projects: roles per project and isolation (%s)', (kind) => {
  let target: Target;
  let projectB: string;
  const tokens: Record<'owner' | 'operator' | 'viewer' | 'outsider', string> = {} as never;
  const userIds: Record<string, string> = {};
  let snapshotId: string;
  let templateId: string;
  let functionId: string;
  let invocationId: string;

  const as = (who: keyof typeof tokens, opts: InjectOptions) =>
    target.t.app.inject({ ...opts, headers: { authorization: `Bearer ${tokens[who]}`, ...(opts.headers ?? {}) } });

  beforeAll(async () => {
    target = await startTarget({}, kind);
    const created = await target.t.request({ method: 'POST', url: '/v1/projects', payload: { name: 'project-b' } });
    expect(created.statusCode, created.body).toBe(201);
    projectB = created.json().id;
    const hash = await new PasswordHasher(TEST_PASSWORD_LOG2N).hash('pw-for-members');
    for (const [name, project, role] of [
      ['owner', DEFAULT_PROJECT_ID, 'owner'],
      ['operator', DEFAULT_PROJECT_ID, 'operator'],
      ['viewer', DEFAULT_PROJECT_ID, 'viewer'],
      ['outsider', projectB, 'operator'],
    ] as const) {
      const [u] = await target.t.database.withSession((s) =>
        s.query<{ id: string }>(
          `INSERT INTO users (username, password_hash, role) VALUES ($1, $2, 'user') RETURNING id`,
          [`member-${name}`, hash],
        ),
      );
      userIds[name] = u!.id;
      const put = await target.t.request({
        method: 'PUT',
        url: `/v1/projects/${project}/members/${u!.id}`,
        payload: { role },
      });
      expect(put.statusCode, put.body).toBe(200);
      const login = await target.t.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        payload: { username: `member-${name}`, password: 'pw-for-members' },
      });
      // An API token, so that the matrix's logout ends nothing.
      const minted = await target.t.app.inject({
        method: 'POST',
        url: '/v1/tokens',
        headers: { authorization: `Bearer ${login.json().token}` },
        payload: { name: `matrix-${name}` },
      });
      expect(minted.statusCode, minted.body).toBe(201);
      tokens[name] = minted.json().token;
    }
    // A snapshot row and a template of project A, so that their routes name real resources.
    const [snap] = await target.t.database.withSession((s) =>
      s.query<{ id: string }>(
        `INSERT INTO snapshots (vm_id, host_id, name, snapshot_type, state, source_spec)
         VALUES ($1, $2, 'snap-a', 'Full', 'ready', '{}'::jsonb) RETURNING id`,
        [target.vms[0]!.id, target.host.id],
      ),
    );
    snapshotId = snap!.id;
    const tpl = await target.t.request({
      method: 'POST',
      url: '/v1/templates',
      payload: {
        name: 'tpl-a',
        spec: {
          vcpu: 1,
          mem_mib: 128,
          kernel_image_id: target.images.kernel,
          initrd_image_id: target.images.initrd,
          rootfs_image_id: target.images.rootfs,
        },
      },
    });
    expect(tpl.statusCode, tpl.body).toBe(201);
    templateId = tpl.json().id;
    // A function of project A and an invocation of it (a row: the matrix must not boot anything).
    const fn = await target.t.request({
      method: 'POST',
      url: '/v1/functions',
      payload: { name: 'fn-a', runtime: 'node20', code: 'exports.handler = async () => 1;' },
    });
    expect(fn.statusCode, fn.body).toBe(201);
    expect(fn.json().project_id).toBe(DEFAULT_PROJECT_ID);
    functionId = fn.json().id;
    const [inv] = await target.t.database.withSession((s) =>
      s.query<{ id: string }>(
        `INSERT INTO function_invocations (function_id, version_id, version, state, trigger)
         SELECT id, (SELECT id FROM function_versions WHERE function_id = functions.id LIMIT 1), 1, 'succeeded', 'api'
         FROM functions WHERE id = $1 RETURNING id`,
        [functionId],
      ),
    );
    invocationId = inv!.id;
  });
  afterAll(async () => target?.close());

  const userRoutes = () => [
    ...allRoutes().filter((d) => d.auth === 'user'),
    ...Object.values(wsRoutes).map((d) => ({ ...d, method: 'GET' as const, body: undefined, rawBody: false })),
  ];

  /** The route's URL naming project A's real resources (urlOf's, plus snapshots, templates and projects). */
  function urlIn(def: { path: string }, real: boolean): string {
    if (!real)
      return def.path
        .replace(':id', '00000000-0000-4000-8000-00000000dead')
        .replace(':user_id', userIds.viewer!)
        .replace(':drive_id', 'rootfs')
        .replace(':nic_id', 'eth0');
    const own: [RegExp, string][] = [
      [/^\/v1\/snapshots\/:id/, snapshotId],
      [/^\/v1\/templates\/:id/, templateId],
      [/^\/v1\/projects\/:id/, DEFAULT_PROJECT_ID],
      [/^\/v1\/functions\/:id/, functionId],
      [/^\/v1\/invocations\/:id/, invocationId],
    ];
    const hit = own.find(([re]) => re.test(def.path));
    return (hit ? def.path.replace(':id', hit[1]) : urlOf(target, def)).replace(':user_id', userIds.viewer!);
  }
  const idsOfA = () =>
    new Set<string>([
      ...target.vms.map((v) => v.id),
      ...Object.values(target.images),
      templateId,
      snapshotId,
      DEFAULT_PROJECT_ID,
      functionId,
      invocationId,
    ]);
  /** Whether the URL names one of project A's resources by `:id`. */
  const namesA = (path: string) =>
    /^\/v1\/(vms|images|snapshots|templates|projects|functions|invocations)\/:id/.test(path);

  async function call(who: keyof typeof tokens, def: ReturnType<typeof userRoutes>[number], real: boolean) {
    const res = await as(who, {
      method: def.method,
      url: urlIn(def, real),
      headers: def.rawBody ? { 'content-type': 'application/octet-stream' } : {},
      ...(def.body ? { payload: {} } : def.rawBody ? { payload: Buffer.from('x') } : {}),
    });
    const what = `${def.method} ${def.path} (${def.permission}) as ${who}: ${res.statusCode} ${res.body.slice(0, 200)}`;
    expectProblem(res, what);
    return { res, what };
  }

  it("answers a user of another project 404 on every route naming project A's resources, like a missing one", async () => {
    const held = new Set<string>(['session', 'token:read', 'token:write', ...ROLE_PERMISSIONS.operator]);
    let hidden = 0;
    for (const def of userRoutes()) {
      const { res, what } = await call('outsider', def, true);
      if (!held.has(def.permission!)) expect(res.statusCode, what).toBe(403);
      else if (namesA(def.path)) {
        expect(res.statusCode, what).toBe(404);
        hidden++;
      }
    }
    expect(hidden).toBeGreaterThan(40);
    // The same body as a VM that does not exist: nothing tells the two apart but the id.
    const missing = '00000000-0000-4000-8000-00000000beef';
    const a = (await as('outsider', { method: 'GET', url: `/v1/vms/${target.vms[0]!.id}` })).json();
    const b = (await as('outsider', { method: 'GET', url: `/v1/vms/${missing}` })).json();
    expect({ ...a, detail: a.detail.replace(target.vms[0]!.id, 'X'), request_id: 0 }).toEqual({
      ...b,
      detail: b.detail.replace(missing, 'X'),
      request_id: 0,
    });
  });

  for (const role of ['owner', 'operator', 'viewer'] as const) {
    it(`answers a ${role} of project A 403 exactly where the role lacks the route's permission`, async () => {
      const held = new Set<string>(['session', 'token:read', 'token:write', ...ROLE_PERMISSIONS[role]]);
      let refused = 0;
      for (const def of userRoutes()) {
        // Writers act on a missing id: the matrix must not delete the resources the other cases use.
        const real = def.method === 'GET' || !held.has(def.permission!);
        const { res, what } = await call(role, def, real);
        if (held.has(def.permission!)) expect(res.statusCode, what).not.toBe(403);
        else {
          expect(res.statusCode, what).toBe(403);
          refused++;
        }
      }
      expect(refused).toBeGreaterThan(role === 'viewer' ? 40 : 10);
    });
  }

  it('lists only what the caller may see, and filters by project_id', async () => {
    for (const path of ['/v1/vms', '/v1/images', '/v1/templates', '/v1/operations', '/v1/events', '/v1/functions']) {
      const mine = await as('outsider', { method: 'GET', url: path });
      expect(mine.statusCode, mine.body).toBe(200);
      // (The matrix above made project B an image of its own by upload: B sees that one.)
      const ofA = mine
        .json()
        .items.filter(
          (i: { project_id?: string; id: string; resource_id?: string; vm_id?: string }) =>
            i.project_id === DEFAULT_PROJECT_ID || [i.id, i.resource_id, i.vm_id].some((x) => x && idsOfA().has(x)),
        );
      expect(ofA, path).toEqual([]);
      const theirs = await as('viewer', { method: 'GET', url: path });
      expect(theirs.json().items.length, path).toBeGreaterThan(0);
    }
    const filtered = await target.t.request({ method: 'GET', url: `/v1/vms?project_id=${projectB}` });
    expect(filtered.json().items).toEqual([]);
    const all = await target.t.request({ method: 'GET', url: `/v1/vms?project_id=${DEFAULT_PROJECT_ID}` });
    expect(all.json().items.map((v: { project_id: string }) => v.project_id)).toEqual([
      DEFAULT_PROJECT_ID,
      DEFAULT_PROJECT_ID,
    ]);
    const projects = await as('outsider', { method: 'GET', url: '/v1/projects' });
    expect(projects.json().items.map((p: { id: string; role: string }) => [p.id, p.role])).toEqual([
      [projectB, 'operator'],
    ]);
  });

  it('refuses a user of project B every way into project A: snapshot, clone, instantiate, create, images', async () => {
    const vm = target.vms[0]!.id;
    for (const [url, payload] of [
      [`/v1/vms/${vm}/snapshots`, { name: 's' }],
      [`/v1/vms/${vm}/clone`, { name: 'c' }],
      [`/v1/vms/${vm}/stop`, undefined],
      [`/v1/snapshots/${snapshotId}/instantiate`, { name: 'i' }],
      [`/v1/templates/${templateId}/instantiate`, { name: 't' }],
    ] as const) {
      const res = await as('outsider', { method: 'POST', url, ...(payload ? { payload } : {}) });
      expect(res.statusCode, `${url}: ${res.body}`).toBe(404);
    }
    const bulk = await as('outsider', {
      method: 'POST',
      url: '/v1/vms/actions',
      payload: { action: 'stop', ids: [vm] },
    });
    expect(bulk.json().results).toEqual([expect.objectContaining({ id: vm, ok: false, code: 'vm_not_found' })]);
    const spec = {
      vcpu: 1,
      mem_mib: 128,
      kernel_image_id: target.images.kernel,
      initrd_image_id: target.images.initrd,
      rootfs_image_id: target.images.rootfs,
    };
    const intoA = await as('outsider', {
      method: 'POST',
      url: '/v1/vms',
      payload: { name: 'x', project_id: DEFAULT_PROJECT_ID, ...spec },
    });
    expect(intoA.statusCode, intoA.body).toBe(404);
    expect(intoA.json()).toMatchObject({ code: 'project_not_found', field: 'body.project_id' });
    // A's images are not B's to boot from, until A makes one public.
    const withA = await as('outsider', { method: 'POST', url: '/v1/vms', payload: { name: 'x', ...spec } });
    expect(withA.statusCode, withA.body).toBe(422);
    expect(withA.json()).toMatchObject({ code: 'unknown_image', field: 'body.kernel_image_id' });
    const viewerCreate = await as('viewer', { method: 'POST', url: '/v1/vms', payload: { name: 'v', ...spec } });
    expect(viewerCreate.statusCode).toBe(403);
  });

  it('makes a public image readable by every project and writable only by its own', async () => {
    const img = target.images.kernel;
    expect((await as('outsider', { method: 'GET', url: `/v1/images/${img}` })).statusCode).toBe(404);
    const pub = await target.t.request({ method: 'PATCH', url: `/v1/images/${img}`, payload: { public: true } });
    expect(pub.statusCode, pub.body).toBe(200);
    expect(pub.json()).toMatchObject({ public: true, project_id: DEFAULT_PROJECT_ID });
    expect((await as('outsider', { method: 'GET', url: `/v1/images/${img}` })).statusCode).toBe(200);
    const listed = await as('outsider', { method: 'GET', url: '/v1/images' });
    expect(listed.json().items.filter((i: { project_id: string }) => i.project_id !== projectB)).toEqual([
      expect.objectContaining({ id: img, public: true }),
    ]);
    const write = await as('outsider', { method: 'PATCH', url: `/v1/images/${img}`, payload: { description: 'mine' } });
    expect(write.statusCode, write.body).toBe(403);
    await target.t.request({ method: 'PATCH', url: `/v1/images/${img}`, payload: { public: false } });
  });

  it('lets owners manage members, operators not; a project holding resources is not deleted', async () => {
    const put = (who: keyof typeof tokens, role: string) =>
      as(who, {
        method: 'PUT',
        url: `/v1/projects/${DEFAULT_PROJECT_ID}/members/${userIds.viewer}`,
        payload: { role },
      });
    expect((await put('operator', 'operator')).statusCode).toBe(403);
    const byOwner = await put('owner', 'viewer');
    expect(byOwner.statusCode, byOwner.body).toBe(200);
    expect(byOwner.json()).toMatchObject({ user_id: userIds.viewer, username: 'member-viewer', role: 'viewer' });
    // Held in no project: refused by the route-level check before any project is looked at.
    expect((await put('outsider', 'viewer')).statusCode).toBe(403);
    const members = await as('viewer', { method: 'GET', url: `/v1/projects/${DEFAULT_PROJECT_ID}/members` });
    expect(members.json().items.map((m: { username: string }) => m.username)).toContain('member-owner');

    const full = await target.t.request({ method: 'DELETE', url: `/v1/projects/${DEFAULT_PROJECT_ID}` });
    expect(full.statusCode, full.body).toBe(409);
    expect(full.json()).toMatchObject({ code: 'project_not_empty' });
    const empty = await target.t.request({ method: 'POST', url: '/v1/projects', payload: { name: 'empty' } });
    expect((await target.t.request({ method: 'DELETE', url: `/v1/projects/${empty.json().id}` })).statusCode).toBe(204);
    const taken = await target.t.request({ method: 'POST', url: '/v1/projects', payload: { name: 'project-b' } });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ code: 'project_name_taken', field: 'body.name' });
  });

  it("scopes a token to the project it was minted for: an admin's token for B sees nothing of A", async () => {
    const minted = await target.t.request({
      method: 'POST',
      url: '/v1/tokens',
      payload: { name: 'b-only', project_id: projectB },
    });
    expect(minted.statusCode, minted.body).toBe(201);
    expect(minted.json().project_id).toBe(projectB);
    const h = { authorization: `Bearer ${minted.json().token}` };
    expect((await target.t.app.inject({ method: 'GET', url: '/v1/vms', headers: h })).json().items).toEqual([]);
    expect(
      (await target.t.app.inject({ method: 'GET', url: `/v1/vms/${target.vms[0]!.id}`, headers: h })).statusCode,
    ).toBe(404);
    expect((await target.t.app.inject({ method: 'GET', url: '/v1/hosts', headers: h })).statusCode).toBe(403);
    const elsewhere = await as('outsider', {
      method: 'POST',
      url: '/v1/tokens',
      payload: { name: 'a', project_id: DEFAULT_PROJECT_ID },
    });
    expect(elsewhere.statusCode).toBe(404);
  });
});
