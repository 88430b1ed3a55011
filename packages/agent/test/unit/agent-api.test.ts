import { existsSync } from 'node:fs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildAgentApp } from '../../src/app.ts';
import { AgentConfigError, loadAgentConfig } from '../../src/config.ts';
import { assertVmId, vmFiles } from '../../src/vms/layout.ts';
import type { VmService } from '../../src/vms/vms.service.ts';

const SECRET = 'host-secret-for-unit-tests';
const ID = '0190f0a4-1111-7222-8333-944445555666';

function app() {
  const calls: string[] = [];
  const vms = {
    list: () => [{ id: ID, state: 'running', pid: 42, booted_at: null }],
    remove: async (id: string) => {
      calls.push(`remove ${assertVmId(id)}`);
    },
    action: async (id: string, action: string) => {
      calls.push(`${action} ${assertVmId(id)}`);
      return { id, state: 'paused', pid: 42, booted_at: null };
    },
  } as unknown as VmService;
  return { calls, app: buildAgentApp({ vms, secret: () => SECRET, log: pino({ level: 'silent' }) }) };
}

describe('agent configuration', () => {
  it('lists every problem at once', () => {
    try {
      loadAgentConfig({ AGENT_BIND: 'nope', AGENT_GUEST_PORT: '0', AGENT_LABELS: 'a=b,broken' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AgentConfigError);
      const problems = (e as AgentConfigError).problems.join('\n');
      expect(problems).toMatch(/AGENT_BIND/);
      expect(problems).toMatch(/MANAGER_BASE is required/);
      expect(problems).toMatch(/AGENT_GUEST_PORT/);
      expect(problems).toMatch(/AGENT_LABELS/);
    }
  });

  it('applies the documented defaults', () => {
    const c = loadAgentConfig({ MANAGER_BASE: 'http://127.0.0.1:18080/', AGENT_LABELS: 'zone=a,disk=ssd' });
    expect(c).toMatchObject({
      bind: { host: '127.0.0.1', port: 19090 },
      dataDir: '/var/lib/nqvm-agent',
      managerBase: 'http://127.0.0.1:18080',
      advertiseUrl: 'https://127.0.0.1:19090',
      guestPort: 19091,
      heartbeatS: 3,
      labels: { zone: 'a', disk: 'ssd' },
    });
  });
});

describe('agent API', () => {
  it('answers health without credentials and everything else only with the host secret', async () => {
    const { app: a } = app();
    expect((await a.inject({ url: '/agent/v1/health' })).statusCode).toBe(200);
    const anon = await a.inject({ url: '/agent/v1/vms' });
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(anon.json()).toMatchObject({ code: 'unauthorized' });
    const wrong = await a.inject({ url: '/agent/v1/vms', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    const ok = await a.inject({ url: '/agent/v1/vms', headers: { authorization: `Bearer ${SECRET}` } });
    expect(ok.json()).toEqual({ items: [{ id: ID, state: 'running', pid: 42, booted_at: null }] });
  });

  it('refuses VM ids that are not UUIDs before they reach a path or argv', async () => {
    const { app: a, calls } = app();
    for (const bad of ['$(touch /tmp/NQVM_MARK)', '..%2F..%2Fetc', 'x;rm -rf /', '`id`']) {
      const res = await a.inject({
        method: 'DELETE',
        url: `/agent/v1/vms/${encodeURIComponent(bad)}`,
        headers: { authorization: `Bearer ${SECRET}` },
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'invalid_vm_id', field: 'params.id' });
    }
    expect(calls).toEqual([]);
    expect(existsSync('/tmp/NQVM_MARK')).toBe(false);
    expect(() => vmFiles('/data', '../../etc')).toThrow(/not a VM id/);
    const del = await a.inject({
      method: 'DELETE',
      url: `/agent/v1/vms/${ID}`,
      headers: { authorization: `Bearer ${SECRET}` },
    });
    expect(del.statusCode).toBe(204);
    expect(calls).toEqual([`remove ${ID}`]);
  });

  it('validates the boot spec and names the field', async () => {
    const { app: a } = app();
    const res = await a.inject({
      method: 'POST',
      url: `/agent/v1/vms/${ID}/boot`,
      headers: { authorization: `Bearer ${SECRET}` },
      payload: { vm_id: ID, vcpu: 0 },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_failed', field: expect.stringMatching(/^body\./) });
  });
});
