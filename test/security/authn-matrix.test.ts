import { allRoutes, type RouteDef } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, startTarget, type Target, urlOf as urlFor } from './support.ts';

/**
 * Every route of the route table, called with each credential an attacker may hold that is not the right one:
 * none, a malformed or unknown token, the host's secret, another VM's guest token. Each answer is 401/403
 * problem+json, never 2xx and never 5xx.
 */
describe('authentication matrix over the route table', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget();
  });
  afterAll(async () => target?.close());

  const urlOf = (def: RouteDef) => urlFor(target, def);

  const wrongCredentials = (): [string, Record<string, string>][] => [
    ['no credentials', {}],
    ['a malformed bearer', { authorization: 'Bearer \u00ff\u00fe' }],
    ['an unknown session token', { authorization: 'Bearer nqs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['an unknown API token', { authorization: 'Bearer nqt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['an unknown session cookie', { cookie: 'nqvm_session=nqs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['a Basic header', { authorization: 'Basic YWRtaW46YWRtaW4=' }],
    ['the host secret', { authorization: `Bearer ${target.host.secret}` }],
    ["another VM's guest token", { authorization: `Bearer ${target.vms[1]!.guestToken}` }],
    [
      "another VM's guest token as a host",
      { authorization: `Bearer ${target.vms[1]!.guestToken}`, 'x-nqvm-host-id': target.host.id },
    ],
    ['a host id with no secret', { 'x-nqvm-host-id': target.host.id }],
    ['a malformed host id', { authorization: `Bearer ${target.host.secret}`, 'x-nqvm-host-id': 'nope' }],
  ];

  /** Which wrong credentials apply to a route: a host route accepts the host secret, a guest route its own token. */
  function attempts(def: RouteDef): [string, Record<string, string>][] {
    return wrongCredentials().filter(
      ([name]) => def.auth !== 'host' || (name !== 'the host secret' && name !== 'a malformed host id'),
    );
  }

  it('refuses every protected route with 401/403 problem+json for every wrong credential', async () => {
    let calls = 0;
    for (const def of allRoutes()) {
      if (def.auth === 'public') continue;
      for (const [what, headers] of attempts(def)) {
        const res = await target.t.app.inject({
          method: def.method,
          url: urlOf(def),
          headers: { ...headers, ...(def.rawBody ? { 'content-type': 'application/octet-stream' } : {}) },
          ...(def.body ? { payload: {} } : def.rawBody ? { payload: Buffer.from('x') } : {}),
        });
        calls++;
        expectProblem(res, `${def.method} ${def.path} with ${what}`);
        expect([401, 403], `${def.method} ${def.path} with ${what}: ${res.statusCode} ${res.body}`).toContain(
          res.statusCode,
        );
      }
    }
    expect(calls).toBeGreaterThan(500);
  });

  it("refuses a VM's guest report made with another VM's token, and takes it with its own", async () => {
    const [victim, attacker] = target.vms as [Target['vms'][0], Target['vms'][0]];
    const report = (token: string) =>
      target.t.app.inject({
        method: 'POST',
        url: `/v1/vms/${victim.id}/guest-ip`,
        headers: { authorization: `Bearer ${token}` },
        payload: { ip: '10.88.0.77', ready: true },
      });
    const stolen = await report(attacker.guestToken);
    expect([401, 403]).toContain(stolen.statusCode);
    expectProblem(stolen, 'guest report with the wrong token');
    expect((await report(victim.guestToken)).statusCode).toBe(200);
  });

  it('the right credentials still pass (the matrix is not refusing everything)', async () => {
    expect((await target.t.request({ method: 'GET', url: '/v1/vms' })).statusCode).toBe(200);
    expect((await target.host.heartbeat([])).statusCode).toBe(200);
    const content = await target.t.app.inject({
      method: 'GET',
      url: `/v1/images/${target.images.rootfs}/content`,
      headers: { authorization: `Bearer ${target.host.secret}`, 'x-nqvm-host-id': target.host.id },
    });
    expect(content.statusCode).toBe(200);
  });

  it('refuses the WebSocket routes and /metrics without credentials', async () => {
    const victim = target.vms[0]!.id;
    for (const url of ['/v1/events/ws', `/v1/vms/${victim}/shell/ws`, `/v1/vms/${victim}/metrics/ws`, '/metrics']) {
      for (const [what, headers] of wrongCredentials()) {
        const res = await target.t.app.inject({ method: 'GET', url, headers });
        expectProblem(res, `${url} with ${what}`);
        expect([401, 403], `${url} with ${what}`).toContain(res.statusCode);
      }
    }
  });

  it('answers a malformed id on host and guest routes with 400 before any credential is looked up', async () => {
    for (const url of ['/v1/hosts/nope/heartbeat', '/v1/hosts/nope/vm-exits', '/v1/vms/nope/guest-ip']) {
      for (const headers of [{}, { authorization: `Bearer ${target.host.secret}` }]) {
        const res = await target.t.app.inject({ method: 'POST', url, headers, payload: {} });
        expectProblem(res, url);
        expect(res.statusCode, url).toBe(400);
        expect(res.json()).toMatchObject({ code: 'validation_failed', field: 'params.id' });
      }
    }
  });
});
