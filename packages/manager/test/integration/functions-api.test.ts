import { randomBytes, randomUUID } from 'node:crypto';
import type { FunctionResource, FunctionVersion, Invocation } from '@nqvm/api';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { type BootCall, type StandinHost, startStandinHost } from '../support/standin-agent.ts';

const SECRET_VALUE = 'sk_live_do-not-store-me-in-clear';
const HELLO = 'exports.handler = async (event) => ({ hello: event.name ?? "world" });\n';

/**
 * The functions API without QEMU: validation, versions, secrets at rest, 404s, the per-function queue's 429, the
 * HTTP trigger's token, and invocations of a manager that is gone ending failed. A stand-in host agent holds every
 * boot unanswered, so an invocation stays running as long as the test wants.
 */
describe.each(DB_KINDS)('functions API (%s)', (kind) => {
  let t: TestApp;
  let host: StandinHost;
  const boots: BootCall[] = [];

  beforeAll(async () => {
    t = await startTestApp(kind, {
      MANAGER_RECONCILER_DISABLED: 'true',
      NQVM_SECRET_KEY: randomBytes(32).toString('base64'),
      NQVM_FUNCTION_POOL_SIZE: '0',
    });
    host = await startStandinHost(t, (boot) => boots.push(boot));
    expect((await host.heartbeat([])).statusCode).toBe(200);
    for (const [name, k] of [
      ['demo-kernel', 'kernel'],
      ['runtime-node20', 'rootfs'],
    ] as const) {
      const res = await t.request({
        method: 'POST',
        url: `/v1/images/upload?name=${name}&kind=${k}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from(`${name} bytes`),
      });
      expect(res.statusCode, res.body).toBe(201);
    }
  });
  afterAll(async () => {
    await host?.close();
    await t?.close();
  });

  const create = (payload: Record<string, unknown>) => t.request({ method: 'POST', url: '/v1/functions', payload });

  it('refuses a bad name, code and files together, a handler without its file, and a taken name', async () => {
    const bad = await create({ name: 'Hello_World', runtime: 'node20', code: HELLO });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'validation_failed', field: 'body.name' });
    const both = await create({ name: 'both', runtime: 'node20', code: HELLO, files: { 'index.js': HELLO } });
    expect(both.statusCode).toBe(422);
    expect(both.json()).toMatchObject({ code: 'function_code_invalid', field: 'body.code' });
    const missing = await create({ name: 'nofile', runtime: 'python3', files: { 'app.py': 'x = 1\n' } });
    expect(missing.statusCode).toBe(422);
    expect(missing.json()).toMatchObject({ code: 'function_code_invalid', field: 'body.handler' });
    const outside = await create({ name: 'escape', runtime: 'node20', files: { '../index.js': HELLO } });
    expect(outside.statusCode).toBe(422);
    expect(outside.json()).toMatchObject({ code: 'function_code_invalid', field: 'body.files' });
    const project = await create({ name: 'nowhere', runtime: 'node20', code: HELLO, project_id: randomUUID() });
    expect(project.statusCode).toBe(404);
    // A project the caller cannot see answers like a missing one (as every create does).
    expect(project.json()).toMatchObject({ code: 'project_not_found', field: 'body.project_id' });
    const made = await create({ name: 'taken', runtime: 'node20', code: HELLO });
    expect(made.statusCode).toBe(201);
    expect(made.json().project_id).toBe('00000000-0000-4000-8000-000000000001');
    const again = await create({ name: 'taken', runtime: 'node20', code: HELLO });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'function_name_taken', field: 'body.name' });
  });

  it('keeps secrets encrypted at rest and never returns them; a change to what runs makes a new version', async () => {
    const res = await create({
      name: 'versions',
      runtime: 'node20',
      code: HELLO,
      env: { GREETING: 'hi' },
      secrets: { API_KEY: SECRET_VALUE },
    });
    expect(res.statusCode, res.body).toBe(201);
    const fn = res.json() as FunctionResource;
    expect(fn).toMatchObject({
      version: 1,
      handler: 'index.handler',
      files: { 'index.js': HELLO },
      env: { GREETING: 'hi' },
      secret_names: ['API_KEY'],
      network: false,
      vcpu: 1,
      mem_mib: 256,
    });
    expect(res.body).not.toContain(SECRET_VALUE);
    const stored = await t.database.db.execute(
      sql`SELECT secrets_enc::text AS s FROM function_versions WHERE function_id = ${fn.id}`,
    );
    const text = JSON.stringify(stored);
    expect(text).toContain('API_KEY');
    expect(text).not.toContain(SECRET_VALUE);

    const described = await t.request({
      method: 'PATCH',
      url: `/v1/functions/${fn.id}`,
      payload: { description: 'greets', concurrency: 2 },
    });
    expect(described.json()).toMatchObject({ version: 1, description: 'greets', concurrency: 2 });
    const recoded = await t.request({
      method: 'PATCH',
      url: `/v1/functions/${fn.id}`,
      payload: { code: HELLO.replace('world', 'there') },
    });
    expect(recoded.json()).toMatchObject({ version: 2 });
    const rekeyed = await t.request({
      method: 'PATCH',
      url: `/v1/functions/${fn.id}`,
      payload: { secrets: { API_KEY: null, OTHER: 'x' } },
    });
    expect(rekeyed.json()).toMatchObject({ version: 3, secret_names: ['OTHER'] });
    const versions = (await t.request({ method: 'GET', url: `/v1/functions/${fn.id}/versions` })).json() as {
      items: FunctionVersion[];
    };
    expect(versions.items.map((v) => v.version)).toEqual([3, 2, 1]);
    expect(versions.items[1]!.files['index.js']).toContain('there');
    expect(versions.items[2]!.secret_names).toEqual(['API_KEY']);
    expect(JSON.stringify(versions)).not.toContain(SECRET_VALUE);
  });

  it('answers 404 function_not_found and invocation_not_found for ids that do not exist', async () => {
    const id = randomUUID();
    for (const [method, url] of [
      ['GET', `/v1/functions/${id}`],
      ['PATCH', `/v1/functions/${id}`],
      ['DELETE', `/v1/functions/${id}`],
      ['GET', `/v1/functions/${id}/versions`],
      ['GET', `/v1/functions/${id}/invocations`],
      ['POST', `/v1/functions/${id}/invoke`],
    ] as const) {
      const res = await t.request({
        method,
        url,
        ...(method === 'PATCH' ? { payload: { description: 'x' } } : method === 'POST' ? { payload: {} } : {}),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().code).toBe('function_not_found');
    }
    const inv = await t.request({ method: 'GET', url: `/v1/invocations/${id}` });
    expect(inv.json()).toMatchObject({ code: 'invocation_not_found' });
    const trigger = await t.app.inject({ method: 'GET', url: '/fn/no-such-function/x' });
    expect(trigger.statusCode).toBe(404);
    expect(trigger.json().code).toBe('function_not_found');
  });

  it('queues up to queue_limit behind the concurrency limit and refuses the next with 429 function_queue_full', async () => {
    const fn = (
      await create({ name: 'busy', runtime: 'node20', code: HELLO, network: true, concurrency: 1, queue_limit: 1 })
    ).json() as FunctionResource;
    const invoke = () =>
      t.request({ method: 'POST', url: `/v1/functions/${fn.id}/invoke?async=true`, payload: { event: { n: 1 } } });
    const first = await invoke();
    expect(first.statusCode, first.body).toBe(202);
    expect(first.json()).toMatchObject({ state: 'queued', function_id: fn.id, version: 1, trigger: 'api' });
    expect((await invoke()).statusCode).toBe(202);
    const refused = await invoke();
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json()).toMatchObject({ code: 'function_queue_full', retry_after_s: 1 });
    const listed = (await t.request({ method: 'GET', url: `/v1/functions/${fn.id}/invocations` })).json() as {
      items: Invocation[];
    };
    expect(listed.items).toHaveLength(2);
    // The first one runs: a cold instance, booting (the stand-in host holds its boot).
    const deadline = Date.now() + 20_000;
    let running: Invocation | undefined;
    while (Date.now() < deadline && running?.start !== 'cold') {
      running = (await t.request({ method: 'GET', url: `/v1/invocations/${first.json().id}` })).json();
      if (running?.start !== 'cold') await new Promise((r) => setTimeout(r, 50));
    }
    expect(running).toMatchObject({ state: 'running', start: 'cold' });
    expect(running!.vm_id).toBeTruthy();
  });

  it('demands the HTTP trigger token when one is set, and answers 404 when the trigger is off', async () => {
    const token = 'trigger-token-0123456789';
    const fn = (
      await create({ name: 'guarded', runtime: 'node20', code: HELLO, http_enabled: true, http_token: token })
    ).json() as FunctionResource;
    expect(fn).toMatchObject({ http_enabled: true, http_token_set: true });
    const none = await t.app.inject({ method: 'POST', url: '/fn/guarded/hook', payload: 'x' });
    expect(none.statusCode).toBe(401);
    const wrong = await t.app.inject({
      method: 'GET',
      url: '/fn/guarded/',
      headers: { authorization: 'Bearer not-the-token-at-all' },
    });
    expect(wrong.statusCode).toBe(401);
    await t.request({ method: 'PATCH', url: `/v1/functions/${fn.id}`, payload: { http_enabled: false } });
    const off = await t.app.inject({
      method: 'GET',
      url: '/fn/guarded/',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(off.statusCode).toBe(404);
  });

  it('ends an invocation whose manager is gone as failed, never leaving it running', async () => {
    const fn = (await create({ name: 'orphaned', runtime: 'node20', code: HELLO })).json() as FunctionResource;
    const version = (
      (await t.request({ method: 'GET', url: `/v1/functions/${fn.id}/versions` })).json() as {
        items: FunctionVersion[];
      }
    ).items[0]!;
    const id = randomUUID();
    await t.database.db.execute(sql`INSERT INTO function_invocations
      (id, function_id, version_id, version, state, trigger, lease_owner, lease_expires_at, started_at)
      VALUES (${id}, ${fn.id}, ${version.id}, 1, 'running', 'api', 'gone-manager', now() - interval '1 minute', now())`);
    await t.built.services.functions.reap();
    const inv = (await t.request({ method: 'GET', url: `/v1/invocations/${id}` })).json() as Invocation;
    expect(inv.state).toBe('failed');
    expect(inv.error).toMatchObject({ type: 'ManagerLost', reason: 'runtime' });
  });

  it('deletes a function with its versions and invocations', async () => {
    const fn = (await create({ name: 'doomed', runtime: 'node20', code: HELLO })).json() as FunctionResource;
    const res = await t.request({ method: 'DELETE', url: `/v1/functions/${fn.id}` });
    expect(res.statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: `/v1/functions/${fn.id}` })).statusCode).toBe(404);
    const left = await t.database.db.execute(
      sql`SELECT count(*)::int AS n FROM function_versions WHERE function_id = ${fn.id}`,
    );
    expect(JSON.stringify(left)).toContain('0');
    const listed = (await t.request({ method: 'GET', url: '/v1/functions?limit=2' })).json() as {
      items: FunctionResource[];
      next_cursor: string | null;
    };
    expect(listed.items.map((f) => f.name)).toEqual(['busy', 'guarded']);
    const next = (await t.request({ method: 'GET', url: `/v1/functions?limit=2&cursor=${listed.next_cursor}` })).json();
    expect(next.items.map((f: FunctionResource) => f.name)).toContain('taken');
  });
});
