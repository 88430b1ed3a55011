import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError, UpstreamError } from '../../domain/errors.ts';
import { type AgentTarget, HttpAgentApi } from '../vms/agent-client.ts';
import { HttpDevicesAgent } from './devices.agent.ts';

describe('host agent calls (one client for VMs and devices)', () => {
  let server: Server;
  let t: AgentTarget;
  const seen: { method: string; url: string; auth: string; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization ?? '', body });
        const reply = (status: number, b?: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(b === undefined ? undefined : JSON.stringify(b));
        };
        if (req.url?.endsWith('/balloon')) return reply(409, { code: 'no_balloon', detail: 'no balloon device' });
        if (req.url?.endsWith('/broken')) return reply(500, { detail: 'disk on fire' });
        if (req.url?.endsWith('/stop')) return reply(422, { code: 'bad_timeout' });
        if (req.method === 'DELETE') return reply(204);
        return reply(200, { items: [{ vm_id: 'x' }], ok: true });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    t = { hostId: 'h1', addr: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`, secret: 's3cret' };
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('devices: sends the secret and JSON under /agent/v1, returns the parsed answer', async () => {
    expect(await new HttpDevicesAgent().call(t, 'PATCH', '/vms/v/drives/d', { a: 1 })).toEqual({
      items: [{ vm_id: 'x' }],
      ok: true,
    });
    expect(seen.at(-1)).toEqual({
      method: 'PATCH',
      url: '/agent/v1/vms/v/drives/d',
      auth: 'Bearer s3cret',
      body: '{"a":1}',
    });
  });

  it("devices: the agent's 4xx keeps its status and code; 5xx is a 502 host_error", async () => {
    const refused = await new HttpDevicesAgent().call(t, 'GET', '/vms/v/balloon').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DomainError);
    expect(refused).not.toBeInstanceOf(UpstreamError);
    expect([(refused as DomainError).status, (refused as DomainError).code]).toEqual([409, 'no_balloon']);
    const broken = await new HttpDevicesAgent().call(t, 'GET', '/vms/v/broken').catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(UpstreamError);
    expect((broken as Error).message).toBe('host agent: disk on fire');
  });

  it('vms: every agent error is a 502 naming its detail or code; 204 is undefined', async () => {
    const api = new HttpAgentApi();
    expect(await api.list(t)).toEqual([{ vm_id: 'x' }]);
    expect(await api.remove(t, 'v')).toBeUndefined();
    const e = await api.stop(t, 'v', 5).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UpstreamError);
    expect([(e as DomainError).status, (e as Error).message]).toEqual([502, 'host agent: bad_timeout']);
  });

  it('an unreachable agent is a 502 host_error', async () => {
    const gone = { ...t, addr: 'http://127.0.0.1:1' };
    const e = await new HttpDevicesAgent(2000).call(gone, 'GET', '/vms').catch((err: unknown) => err);
    expect([(e as DomainError).status, (e as DomainError).code]).toEqual([502, 'host_error']);
  });
});
