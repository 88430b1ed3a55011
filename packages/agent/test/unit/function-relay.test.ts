import { NqvmClient } from '@nqvm/api';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { functionRoutes } from '../../src/functions/function-relay.ts';
import { installProblemHandling } from '../../src/mount.ts';

const loadBody = { runtime: 'node20', handler: 'index.handler', files: { 'index.js': 'x' }, env: {} };
const json = (status: number, body: unknown, type = 'application/json') =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': type } });

/** The relay in front of a stand-in guest agent answering `answer` (its requests are recorded). */
async function relayTo(answer: (url: string, body: unknown) => Response | Promise<Response>) {
  const seen: { url: string; body: unknown; auth: string | null }[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    const body = JSON.parse(String(init.body));
    seen.push({ url, body, auth: new Headers(init.headers).get('authorization') });
    return answer(url, body);
  }) as unknown as typeof fetch;
  const app = Fastify();
  installProblemHandling(app);
  const client = new NqvmClient({ baseUrl: 'http://10.0.0.2:9000', token: 'vm-token', fetch: fetchImpl });
  app.register(async (api) =>
    functionRoutes(api, {
      vms: { specOf: (id) => (id === 'gone' ? undefined : ({} as never)) },
      guest: { clientOf: (id) => (id === 'unreported' ? undefined : client) },
    }),
  );
  await app.ready();
  return { app, seen };
}

describe('host agent: function runner relay', () => {
  it("passes load and invoke to the VM's guest agent with its token and answers the guest's result", async () => {
    const result = {
      status: 'succeeded',
      value: { n: 2 },
      stdout: 'hi\n',
      stderr: '',
      stdout_truncated: false,
      stderr_truncated: false,
      duration_ms: 3,
    };
    const { app, seen } = await relayTo((url) =>
      url.endsWith('/function/load') ? json(200, { loaded: true, load_ms: 12 }) : json(200, result),
    );
    const loaded = await app.inject({ method: 'POST', url: '/agent/v1/vms/a/function/load', payload: loadBody });
    expect([loaded.statusCode, loaded.json()]).toEqual([200, { loaded: true, load_ms: 12 }]);
    const invoke = { event: { n: 1 }, timeout_ms: 1000, output_limit_bytes: 4096 };
    const ran = await app.inject({ method: 'POST', url: '/agent/v1/vms/a/function/invoke', payload: invoke });
    expect([ran.statusCode, ran.json()]).toEqual([200, result]);
    expect(seen.map((s) => [s.url, s.auth])).toEqual([
      ['http://10.0.0.2:9000/function/load', 'Bearer vm-token'],
      ['http://10.0.0.2:9000/function/invoke', 'Bearer vm-token'],
    ]);
    expect(seen[1]?.body).toEqual(invoke);
    await app.close();
  });

  it("keeps the guest's catalogued 4xx (with its members), and makes anything else a 502", async () => {
    const problem = (status: number, code: string, extra = {}) =>
      json(status, { type: 'x', title: 't', status, code, detail: `d ${code}`, ...extra }, 'application/problem+json');
    const answers = [
      problem(422, 'function_load_failed', { error: { type: 'SyntaxError', message: 'm', stack: 's' } }),
      problem(409, 'function_not_loaded'),
      problem(418, 'made_up_code'),
      json(500, { error: 'boom' }),
      json(404, { error: 'not_found' }),
    ];
    const { app } = await relayTo(() => answers.shift() as Response);
    const call = () => app.inject({ method: 'POST', url: '/agent/v1/vms/a/function/load', payload: loadBody });
    const failed = await call();
    expect([failed.statusCode, failed.json().code, failed.json().error.type]).toEqual([
      422,
      'function_load_failed',
      'SyntaxError',
    ]);
    expect((await call()).json().code).toBe('function_not_loaded');
    for (let i = 0; i < 3; i++) {
      const r = await call();
      expect([r.statusCode, r.json().code]).toEqual([502, 'guest_agent_unavailable']);
    }
    await app.close();
  });

  it('answers 404 for a VM this host does not have and 409 before the guest reported', async () => {
    const { app, seen } = await relayTo(() => json(200, {}));
    const gone = await app.inject({ method: 'POST', url: '/agent/v1/vms/gone/function/load', payload: loadBody });
    expect([gone.statusCode, gone.json().code]).toEqual([404, 'vm_not_found']);
    const early = await app.inject({
      method: 'POST',
      url: '/agent/v1/vms/unreported/function/load',
      payload: loadBody,
    });
    expect([early.statusCode, early.json().code]).toEqual([409, 'guest_not_ready']);
    const bad = await app.inject({
      method: 'POST',
      url: '/agent/v1/vms/a/function/load',
      payload: { ...loadBody, files: { '../x': '' } },
    });
    expect([bad.statusCode, bad.json().code]).toEqual([400, 'validation_failed']);
    expect(seen).toEqual([]);
    await app.close();
  });
});
