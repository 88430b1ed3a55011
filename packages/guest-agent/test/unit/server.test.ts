import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log';
import { MetricsSampler } from '../../src/metrics';
import { createGuestServer, listen } from '../../src/server';
import { fakeProc, fixture } from '../fixtures/proc-source';

let server: Server | undefined;
const logs: string[] = [];

afterEach(async () => {
  await new Promise((r) => server?.close(r));
  server = undefined;
  logs.length = 0;
});

async function serve(sampler: MetricsSampler, now: () => number = Date.now): Promise<string> {
  server = createGuestServer({ sampler, logger: createLogger((l) => logs.push(l)), now });
  await listen(server, 0, '127.0.0.1');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('guest agent HTTP server', () => {
  it('answers /health with status, version and its own uptime', async () => {
    let t = 1_000_000;
    const base = await serve(new MetricsSampler(fakeProc()), () => t);
    t += 42_700;
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: 'ok', version: '0.1.0', uptime_s: 42 });
  });

  it('answers /metrics from the last background CPU sample without waiting', async () => {
    const proc = fakeProc();
    const sampler = new MetricsSampler(proc);
    await sampler.sampleCpu();
    proc.files['/proc/stat'] = fixture('stat-later');
    await sampler.sampleCpu();
    const base = await serve(sampler);
    const res = await fetch(`${base}/metrics?x=1`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ cpu_usage_percent: 57.14, memory_total_kb: 236924, process_count: 4 });
    expect(typeof body.sampled_at).toBe('string');
  });

  it('answers unknown paths with a JSON 404 and other methods with 405', async () => {
    const base = await serve(new MetricsSampler(fakeProc()));
    const missing = await fetch(`${base}/configure-interface`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'not_found', path: '/configure-interface' });
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers 500 JSON and logs when /proc cannot be read', async () => {
    const proc = fakeProc();
    proc.files['/proc/meminfo'] = 'garbage';
    const base = await serve(new MetricsSampler(proc));
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: 'metrics_unavailable' });
    expect(JSON.parse(logs[0] ?? '{}')).toMatchObject({ level: 'error', msg: 'metrics_failed' });
  });
});
