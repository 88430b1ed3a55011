import { agentApi, allAgentRoutes, guestApi, type RouteDef, statusOfCode } from '@nqvm/api';
import Fastify, { type FastifySchema, type RouteOptions } from 'fastify';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildAgentApp, featureRoutes } from '../../src/app.ts';
import type { GuestEndpoints } from '../../src/guest/server.ts';
import { GuestEndpoints as Guest } from '../../src/guest/server.ts';
import type { ManagerClient } from '../../src/manager/client.ts';
import type { MmdsService } from '../../src/mmds/mmds.service.ts';
import type { HostNetwork } from '../../src/net/index.ts';
import { Observe } from '../../src/observe/observe.ts';
import type { SnapshotService } from '../../src/snapshots/snapshots.service.ts';
import { BootFailed, type BootStep } from '../../src/vms/errors.ts';
import type { VmService } from '../../src/vms/vms.service.ts';

const SECRET = 'host-secret-for-contract-tests';
const log = pino({ level: 'silent' });

interface Mounted {
  method: string;
  url: string;
  schema: FastifySchema | undefined;
  websocket: boolean;
}

function collect(app: ReturnType<typeof Fastify>): Mounted[] {
  const out: Mounted[] = [];
  app.addHook('onRoute', (r: RouteOptions & { websocket?: boolean }) => {
    for (const method of [r.method].flat())
      if (method !== 'HEAD') out.push({ method, url: r.url, schema: r.schema, websocket: !!r.websocket });
  });
  return out;
}

/** The agent app as startAgent builds it, its services replaced by stand-ins that are never called. */
async function agentRoutes(): Promise<Mounted[]> {
  const vms = { list: () => [], get: () => ({}), specOf: () => undefined } as unknown as VmService;
  const observe = new Observe({
    dataDir: '/nonexistent',
    vms,
    guest: { lastReports: new Map() } as unknown as GuestEndpoints,
    network: {} as HostNetwork,
    onError: () => undefined,
  });
  const app = buildAgentApp({
    vms,
    secret: () => SECRET,
    log,
    routes: featureRoutes({
      snapshots: {} as SnapshotService,
      mmds: {} as MmdsService,
      observe,
      functions: { vms, guest: { clientOf: () => undefined } },
      dataDir: '/nonexistent',
    }),
  });
  const mounted = collect(app as unknown as ReturnType<typeof Fastify>);
  await app.ready();
  await app.close();
  observe.close();
  return mounted;
}

function expectMounted(mounted: Mounted[], def: RouteDef): void {
  const found = mounted.filter((m) => m.method === def.method && m.url === def.path);
  expect(found, `${def.method} ${def.path}`).toHaveLength(1);
  const m = found[0]!;
  // The very schema objects of the table, not copies that could drift.
  expect(m.schema?.params, `${def.operationId} params`).toBe(def.params);
  expect(m.schema?.querystring, `${def.operationId} query`).toBe(def.query);
  expect(m.schema?.body, `${def.operationId} body`).toBe(def.body);
  const response = (m.schema?.response as Record<string, unknown> | undefined)?.[def.status];
  expect(response, `${def.operationId} response`).toBe(def.rawResponse ? undefined : def.response);
  expect(m.websocket, `${def.operationId} websocket`).toBe(!!def.websocket);
}

describe('agent ↔ manager contract', () => {
  it('the agent mounts every route of agentApi with the schemas of the table, and no /agent/v1 route besides', async () => {
    const mounted = await agentRoutes();
    for (const def of allAgentRoutes()) expectMounted(mounted, def);
    const table = new Set(allAgentRoutes().map((d) => `${d.method} ${d.path}`));
    const extra = mounted.filter((m) => m.url.startsWith('/agent/') && !table.has(`${m.method} ${m.url}`));
    expect(extra).toEqual([]);
  });

  it('the guest endpoint mounts guestApi.endpoint with the schemas of the table', async () => {
    const app = Fastify();
    const mounted = collect(app);
    const guest = new Guest(0, { manager: {} as ManagerClient, tokenOf: () => undefined, addressesOf: () => [], log });
    app.register(async (scope) => guest.routes(scope));
    await app.ready();
    for (const def of Object.values(guestApi.endpoint)) expectMounted(mounted, def);
    const refused = await app.inject({
      method: 'POST',
      url: `/guest/v1/vms/x/report`,
      headers: { authorization: 'Bearer nope' },
      payload: { ip: '10.0.0.2' },
    });
    expect([refused.statusCode, refused.json().code]).toEqual([401, 'unauthorized']);
    await app.close();
  });

  it('answers every error as problem+json with a catalogued code and its status, and the forwarded request id', async () => {
    const vms = {
      list: () => [{ id: 'not-a-uuid', state: 'running', pid: 1, booted_at: null }],
    } as unknown as VmService;
    const app = buildAgentApp({ vms, secret: () => SECRET, log });
    const auth = { authorization: `Bearer ${SECRET}`, 'x-request-id': 'req-from-manager' };
    const answers = [
      await app.inject({ url: agentApi.vms.list.path }),
      await app.inject({ url: '/agent/v1/nowhere', headers: auth }),
      await app.inject({ method: 'POST', url: `/agent/v1/vms/x/stop`, headers: auth, payload: { timeout_s: -1 } }),
      await app.inject({
        method: 'POST',
        url: `/agent/v1/vms/x/stop`,
        headers: { ...auth, 'content-type': 'application/json' },
        payload: '{',
      }),
    ];
    for (const res of answers) {
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const body = res.json() as { code: string; status: number };
      expect(statusOfCode(body.code), body.code).toBe(res.statusCode);
      expect(body.status).toBe(res.statusCode);
    }
    expect(answers.map((r) => r.json().code)).toEqual([
      'unauthorized',
      'route_not_found',
      'validation_failed',
      'bad_request',
    ]);
    expect(answers[1]!.json().request_id).toBe('req-from-manager');
    expect(answers[2]!.json()).toMatchObject({ field: 'body.timeout_s' });
    await app.close();
  });

  it('a failed boot has a catalogued code for every step and outcome', () => {
    const steps: BootStep[] = ['images', 'disk', 'rootfs', 'guest-tools', 'network', 'launch'];
    for (const step of steps)
      for (const status of [500, 422]) {
        const e = new BootFailed(step, new Error('x'), status);
        expect(statusOfCode(e.code), e.code).toBe(status);
      }
    const fetch = new BootFailed('images', new Error('manager down'), 502);
    expect([fetch.code, statusOfCode(fetch.code)]).toEqual(['boot_images_unavailable', 502]);
  });
});
