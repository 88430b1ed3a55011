import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildAgentApp } from '../../src/app.ts';
import { AgentMetrics } from '../../src/metrics/prometheus.ts';
import type { VmService } from '../../src/vms/vms.service.ts';

const SECRET = 'host-secret-for-metrics-tests';
const ID = '0190f0a4-1111-7222-8333-944445555666';

function agentApp() {
  const vms = {
    list: () => [{ id: ID, state: 'running', pid: 42, booted_at: null }],
    boot: async () => ({ id: ID, state: 'running', pid: 42, booted_at: null }),
  } as unknown as VmService;
  return buildAgentApp({ vms, secret: () => SECRET, log: pino({ level: 'silent' }), metrics: new AgentMetrics(vms) });
}

describe('agent /metrics', () => {
  it('is served only with the host secret, in Prometheus text format with the standard process metrics', async () => {
    const app = agentApp();
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${SECRET}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds'])
      expect(res.body).toContain(`# TYPE ${name} `);
    expect(res.body).toContain('nqvm_agent_vms{state="running"} 1');
    expect(res.body).toContain('# TYPE nqvm_vm_boot_duration_seconds histogram');
    expect(res.body).toContain('# TYPE nqvm_snapshot_duration_seconds histogram');
  });

  it('counts answers by route pattern (not the raw URL) and times a boot in the boot histogram', async () => {
    const app = agentApp();
    const auth = { authorization: `Bearer ${SECRET}` };
    await app.inject({ url: `/agent/v1/vms/${ID}/nope`, headers: auth });
    const boot = await app.inject({ method: 'POST', url: `/agent/v1/vms/${ID}/boot`, headers: auth, payload: {} });
    expect(boot.statusCode).toBe(400); // an empty spec: refused, and still one boot answer counted
    const body = (await app.inject({ url: '/metrics', headers: auth })).body;
    expect(body).toMatch(
      /nqvm_http_requests_total\{method="POST",route="\/agent\/v1\/vms\/:id\/boot",status_code="400"\} 1/,
    );
    expect(body).toContain('route="unmatched"');
    expect(body).not.toContain(ID);
    expect(body).toMatch(
      /nqvm_http_request_duration_seconds_bucket\{le="\+Inf",method="POST",route="\/agent\/v1\/vms\/:id\/boot",status_code="400"\} 1/,
    );
    expect(body).toMatch(/nqvm_vm_boot_duration_seconds_count\{outcome="error"\} 1/);
  });

  it("logs and answers with the manager's request id when it sends a sane one, its own otherwise", async () => {
    const app = agentApp();
    const given = await app.inject({ url: '/agent/v1/vms', headers: { 'x-request-id': 'req-from-manager-1' } });
    expect(given.json()).toMatchObject({ code: 'unauthorized', request_id: 'req-from-manager-1' });
    const odd = await app.inject({ url: '/agent/v1/vms', headers: { 'x-request-id': 'bad id\nwith newline' } });
    expect(odd.json().request_id).toMatch(/^[0-9a-f-]{36}$/);
  });
});
