import type { FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { ManagerClient } from '../manager/client.ts';
import { GuestEndpoints } from './server.ts';

function setup(opts: { ip?: string; token?: string; fail?: Error | number } = {}) {
  const calls: Array<{ url: string; init: RequestInit }> = [];
  const debug: string[] = [];
  const log = { debug: (_o: object, msg: string) => void debug.push(msg) } as unknown as FastifyBaseLogger;
  const fakeFetch = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    if (opts.fail instanceof Error) throw opts.fail;
    return new Response(opts.fail ? '{"error":"x"}' : '{"ok":true}', { status: opts.fail ?? 200 });
  }) as typeof fetch;
  const g = new GuestEndpoints(9000, {
    manager: {} as ManagerClient,
    tokenOf: (id) => (id === 'vm-1' ? (opts.token ?? 'tok-1') : undefined),
    addressesOf: () => [],
    log,
    fetch: fakeFetch,
  });
  if (opts.ip !== undefined)
    g.lastReports.set('vm-1', { at: new Date().toISOString(), remote: opts.ip, report: { ip: opts.ip } });
  return { g, calls, debug };
}

describe('console size to the guest agent', () => {
  it('posts the size with the VM token to the address the guest reported', async () => {
    const { g, calls, debug } = setup({ ip: '10.215.0.7' });
    await g.setConsoleSize('vm-1', { cols: 132, rows: 40 });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe('http://10.215.0.7:9000/console-size');
    expect(calls[0]!.init.method).toBe('POST');
    expect(calls[0]!.init.headers).toMatchObject({ authorization: 'Bearer tok-1' });
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ cols: 132, rows: 40 });
    expect(debug).toEqual([]);
  });

  it('clamps sizes to what the guest agent accepts', async () => {
    const { g, calls } = setup({ ip: '10.215.0.7' });
    await g.setConsoleSize('vm-1', { cols: 4, rows: 1000 });
    expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ cols: 20, rows: 300 });
  });

  it('logs at debug and never throws when the guest is unknown, unreachable or refuses', async () => {
    for (const fail of [new Error('connect ECONNREFUSED'), 401, 500]) {
      const { g, debug } = setup({ ip: '10.215.0.7', fail });
      await expect(g.setConsoleSize('vm-1', { cols: 80, rows: 24 })).resolves.toBeUndefined();
      expect(debug).toEqual(['setting the console size in the guest failed']);
    }
    const none = setup();
    await none.g.setConsoleSize('vm-1', { cols: 80, rows: 24 });
    await none.g.setConsoleSize('vm-2', { cols: 80, rows: 24 });
    expect(none.calls).toEqual([]);
    expect(none.debug).toHaveLength(2);
  });

  it('sends nothing to a reported address that is not a plain IPv4 address', async () => {
    for (const ip of ['evil.example', '10.0.0.2/$(touch /tmp/MARK)', '10.0.0.2:80@evil', '::1']) {
      const { g, calls } = setup({ ip });
      await g.setConsoleSize('vm-1', { cols: 80, rows: 24 });
      expect(calls, ip).toEqual([]);
    }
  });
});
