import { createServer, type Server } from 'node:http';
import { agentApi } from '@nqvm/api';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DomainError, UpstreamError } from '../../domain/errors.ts';
import { installRequestContext } from '../../http/request-context.ts';
import { AgentClient, AgentRefused, type AgentTarget, HttpAgentApi } from './agent-client.ts';

/** These stand-in agents serve plain HTTP; mutual TLS is tested in test/security/agent-mtls.test.ts. */
const PLAIN = { allowPlainHttp: true };
const VM = '0190f0a4-1111-7222-8333-944445555666';

describe('the agent client (the one way the manager calls a host agent)', () => {
  let server: Server;
  let t: AgentTarget;
  const seen: { method: string; url: string; auth: string; rid: string; body: string }[] = [];
  const hanging = new Set<import('node:http').ServerResponse>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const rid = String(req.headers['x-request-id'] ?? '');
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization ?? '', rid, body });
        const reply = (status: number, b?: unknown) => {
          res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
          res.end(b === undefined ? undefined : JSON.stringify(b));
        };
        const url = req.url ?? '';
        if (url.endsWith('/balloon/statistics'))
          return reply(409, { status: 409, code: 'balloon_not_configured', detail: 'no balloon device' });
        if (url.endsWith('/pause')) return reply(500, { status: 500, code: 'internal', detail: 'disk on fire' });
        if (url.endsWith('/resume')) return reply(401, { status: 401, code: 'unauthorized', detail: 'bad secret' });
        if (url.endsWith('/ctrl-alt-del')) return hanging.add(res);
        if (url.endsWith('/metrics')) return res.writeHead(200).end('not json');
        if (req.method === 'DELETE') return reply(204);
        if (url === '/agent/v1/vms')
          return reply(200, { items: [{ id: VM, state: 'running', pid: 1, booted_at: null }] });
        return reply(200, { ok: true });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    t = { hostId: 'h1', addr: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`, secret: 's3cret' };
  });
  afterAll(async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('sends the host secret, the JSON body and the request id to the path of the table', async () => {
    const client = new AgentClient({ requestId: () => 'req-42', allowPlainHttp: true });
    const answer = await client.call(t, agentApi.devices.patchDrive, {
      params: { id: VM, drive_id: 'data' },
      body: { rate_limiter: null },
    });
    expect(answer).toEqual({ ok: true });
    expect(seen.at(-1)).toEqual({
      method: 'PATCH',
      url: `/agent/v1/vms/${VM}/drives/data`,
      auth: 'Bearer s3cret',
      rid: 'req-42',
      body: '{"rate_limiter":null}',
    });
  });

  it("passes the agent's 4xx through with its status and code", async () => {
    const e = await new AgentClient(PLAIN)
      .call(t, agentApi.devices.balloonStats, { params: { id: VM } })
      .catch((err: unknown) => err);
    expect(e).toBeInstanceOf(AgentRefused);
    expect([(e as DomainError).status, (e as DomainError).code]).toEqual([409, 'balloon_not_configured']);
    expect((e as Error).message).toBe('host agent: no balloon device');
  });

  it("is a 502 host_error for the agent's 5xx and for a refused host secret (not the caller's fault)", async () => {
    const api = new HttpAgentApi(new AgentClient(PLAIN));
    const broken = await api.action(t, VM, 'pause').catch((err: unknown) => err);
    expect(broken).toBeInstanceOf(UpstreamError);
    expect([(broken as DomainError).status, (broken as Error).message]).toEqual([502, 'host agent: disk on fire']);
    expect((broken as DomainError).extra).toMatchObject({ host_id: 'h1', agent_status: 500, agent_code: 'internal' });
    const refused = await api.action(t, VM, 'resume').catch((err: unknown) => err);
    expect([(refused as DomainError).status, (refused as DomainError).code]).toEqual([502, 'host_error']);
  });

  it('gives up after the timeout, and an answer that is not JSON is a 502', async () => {
    const client = new AgentClient(PLAIN);
    const slow = await client
      .call(t, agentApi.vms.ctrlAltDel, { params: { id: VM }, timeoutMs: 200 })
      .catch((err: unknown) => err);
    expect(slow).toBeInstanceOf(UpstreamError);
    expect((slow as Error).message).toBe('host agent did not answer agentCtrlAltDelVm within 200 ms');
    const garbled = await client.call(t, agentApi.observe.metrics, { params: { id: VM } }).catch((e: unknown) => e);
    expect((garbled as Error).message).toBe('host agent: answered with something other than JSON');
  });

  it('maps the VM calls: list answers the items, remove (204) is undefined', async () => {
    const api = new HttpAgentApi(new AgentClient(PLAIN));
    expect(await api.list(t)).toEqual([{ id: VM, state: 'running', pid: 1, booted_at: null }]);
    expect(await api.remove(t, VM)).toBeUndefined();
    expect(seen.at(-1)).toMatchObject({ method: 'DELETE', url: `/agent/v1/vms/${VM}` });
  });

  it('an unreachable agent is a 502 host_error', async () => {
    const gone = { ...t, addr: 'http://127.0.0.1:1' };
    const e = await new HttpAgentApi(new AgentClient(PLAIN)).list(gone).catch((err: unknown) => err);
    expect([(e as DomainError).status, (e as DomainError).code]).toEqual([502, 'host_error']);
  });

  it('forwards the id of the API request it runs for (and the background work that request started)', async () => {
    const app = Fastify({ genReqId: () => 'req-7' });
    installRequestContext(app);
    const client = new HttpAgentApi(new AgentClient(PLAIN));
    let later: Promise<unknown> = Promise.resolve();
    app.post('/v1/x', async () => {
      later = new Promise((r) => setImmediate(r)).then(() => client.list(t));
      await client.list(t);
      return { ok: true };
    });
    const res = await app.inject({ method: 'POST', url: '/v1/x', payload: { a: 1 } });
    await later;
    expect(res.statusCode).toBe(200);
    expect(seen.slice(-2).map((s) => s.rid)).toEqual(['req-7', 'req-7']);
    await app.close();
  });
});
