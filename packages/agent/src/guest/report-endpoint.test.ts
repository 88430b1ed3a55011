import type { AddressInfo } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuestReportRelay, ManagerClient } from '../manager/client.ts';
import { RateLimiter } from './rate-limit.ts';
import { GuestEndpoints } from './server.ts';

let open: GuestEndpoints | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

/** A real listener on loopback; the "guest" is this test, its source address 127.0.0.1. */
async function endpoint(allocated: string[], limits: { vm?: number; source?: number } = {}) {
  const relayed: GuestReportRelay[] = [];
  const manager = {
    relayGuestReport: async (_id: string, _token: string, r: GuestReportRelay) => void relayed.push(r),
  } as unknown as ManagerClient;
  const g = new GuestEndpoints(0, {
    manager,
    tokenOf: (id) => (id === 'vm-1' ? 'tok-1' : undefined),
    addressesOf: (id) => (id === 'vm-1' ? allocated : []),
    log: pino({ level: 'silent' }) as FastifyBaseLogger,
    reportLimit: { burst: limits.vm ?? 5, refillMs: 60_000 },
    sourceLimit: { burst: limits.source ?? 100, refillMs: 60_000 },
  });
  open = g;
  const app = await g.ensure('127.0.0.1');
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/guest/v1/vms/vm-1/report`;
  const report = async (body: object = { ip: '127.0.0.1', ready: true }, token = 'tok-1') => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { code?: string; field?: string }, res };
  };
  return { relayed, report };
}

describe('the guest report endpoint', () => {
  it('relays a report from the VM’s own address naming it; a wrong token is 401', async () => {
    const e = await endpoint(['127.0.0.1']);
    expect((await e.report(undefined, 'tok-2')).status).toBe(401);
    expect((await e.report()).status).toBe(200);
    expect(e.relayed).toEqual([{ ip: '127.0.0.1', ready: true }]);
  });

  it('refuses a report from an address not allocated to the VM, or naming one, with 403', async () => {
    const other = await endpoint(['10.88.0.5']);
    const from = await other.report({ ip: '10.88.0.5' });
    expect([from.status, from.body.code]).toEqual([403, 'guest_address_mismatch']);
    await open?.close();
    const own = await endpoint(['127.0.0.1']);
    const naming = await own.report({ ip: '10.88.0.9' });
    expect([naming.status, naming.body.code, naming.body.field]).toEqual([403, 'guest_address_mismatch', 'body.ip']);
    expect([...other.relayed, ...own.relayed]).toEqual([]);
  });

  it('a flood of reports is throttled per VM: at most the burst is relayed, the rest answered 429', async () => {
    const e = await endpoint(['127.0.0.1'], { vm: 5 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => e.report()));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(45);
    expect(answers.find((a) => a.status === 429)?.res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(e.relayed).toHaveLength(5);
  });

  it('and per source address before any token is checked', async () => {
    const e = await endpoint(['127.0.0.1'], { source: 3 });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await e.report(undefined, 'wrong')).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
  });
});

describe('RateLimiter', () => {
  it('allows the burst, then one per refill period, and says how long to wait', () => {
    let now = 0;
    const r = new RateLimiter(2, 1000, () => now);
    expect([r.take('a'), r.take('a'), r.take('a')]).toEqual([0, 0, 1000]);
    now = 500;
    expect(r.take('a')).toBe(500);
    now = 1000;
    expect(r.take('a')).toBe(0);
    expect(r.take('b')).toBe(0);
  });

  it('forgets keys past its size, so spoofed keys cannot grow it without bound', () => {
    const r = new RateLimiter(1, 1000, () => 0, 10);
    for (let i = 0; i < 1000; i++) r.take(`k${i}`);
    expect((r as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThanOrEqual(10);
  });
});
