import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';
import { expectProblem } from './support.ts';

describe('host enrolment cannot take over a registered host', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('pglite', { MANAGER_RECONCILER_DISABLED: 'true' });
  });
  afterAll(async () => t?.close());

  const register = async (payload: Record<string, unknown>) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), addr: 'http://127.0.0.1:9', ...payload },
    });
  const heartbeat = (id: string, secret: string) =>
    t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${id}/heartbeat`,
      headers: { authorization: `Bearer ${secret}` },
      payload: {
        capacity: { cpus: 2, memory_mib: 2048, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms: [],
      },
    });

  it('refuses re-registering an existing name with only the join token, and the host keeps its secret', async () => {
    const first = await register({ name: 'prod-1' });
    expect(first.statusCode).toBe(201);
    const { id, secret } = first.json() as { id: string; secret: string };

    const hijack = await register({ name: 'prod-1', addr: 'http://127.0.0.1:6666' });
    expectProblem(hijack, 'hijack');
    expect(hijack.statusCode).toBe(409);
    expect(hijack.json()).toMatchObject({ code: 'host_exists', field: 'body.name' });
    expect(hijack.body).not.toContain('nqh_');

    const guessed = await register({ name: 'prod-1', secret: 'nqh_guessed' });
    expect(guessed.statusCode).toBe(409);
    expect(guessed.json()).toMatchObject({ code: 'host_exists', field: 'body.secret' });

    expect((await heartbeat(id, secret)).statusCode).toBe(200);
    const host = (await t.request({ method: 'GET', url: `/v1/hosts/${id}` })).json();
    expect(host.addr).toBe('http://127.0.0.1:9');
  });

  it('lets the host itself register again with its current secret: same id, a new secret', async () => {
    const first = (await register({ name: 'prod-2' })).json() as { id: string; secret: string };
    const again = await register({ name: 'prod-2', secret: first.secret, addr: 'http://127.0.0.1:19191' });
    expect(again.statusCode).toBe(201);
    const renewed = again.json() as { id: string; secret: string };
    expect(renewed.id).toBe(first.id);
    expect(renewed.secret).not.toBe(first.secret);
    expect((await heartbeat(first.id, first.secret)).statusCode).toBe(401);
    expect((await heartbeat(first.id, renewed.secret)).statusCode).toBe(200);
  });

  it('refuses a wrong join token, and answers malformed host ids with 400 before any lookup', async () => {
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: 'not-the-token', name: 'x', addr: 'http://127.0.0.1:9' },
    });
    expect(wrong.statusCode).toBe(401);
    const res = await t.app.inject({ method: 'POST', url: '/v1/hosts/nope/heartbeat', payload: {} });
    expectProblem(res, 'heartbeat nope');
    expect(res.statusCode).toBe(400);
  });
});
