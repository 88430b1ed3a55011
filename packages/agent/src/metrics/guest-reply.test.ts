import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_REPLY_MAX_BYTES, GuestReplyRefused, getJson, VmMetricsSampler } from './sampler.ts';

/** A guest agent that misbehaves on purpose, on loopback: every reply the agent reads is bounded in bytes and time. */
describe('reading a guest’s /metrics is bounded', () => {
  let server: Server;
  let base: string;
  let sentBytes = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/endless') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(16 * 1024, 0x20);
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) sentBytes += chunk.length;
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
      } else if (req.url === '/drip') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => res.write(' '), 20);
        res.on('close', () => clearInterval(t));
      } else if (req.url === '/huge-length') {
        res.writeHead(200, { 'content-length': String(1 << 30) });
        res.write('{');
      } else if (req.url === '/not-json') res.end('<html>');
      else res.end(JSON.stringify({ ok: true }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('an endless body is cut off just past the cap, as a refused reply', async () => {
    await expect(getJson(`${base}/endless`, 5000)).rejects.toBeInstanceOf(GuestReplyRefused);
    // The server wrote what the socket buffers took; the agent kept at most the cap.
    expect(sentBytes).toBeLessThan(GUEST_REPLY_MAX_BYTES * 64);
  });

  it('a body that trickles forever ends at the deadline, although the socket never idles', async () => {
    const started = Date.now();
    await expect(getJson(`${base}/drip`, 300)).rejects.toThrow(/did not answer within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a declared length above the cap is refused before reading; so is a reply that is not JSON', async () => {
    await expect(getJson(`${base}/huge-length`, 2000)).rejects.toThrow(/larger than/);
    await expect(getJson(`${base}/not-json`, 2000)).rejects.toBeInstanceOf(GuestReplyRefused);
    await expect(getJson(`${base}/ok`, 2000)).resolves.toEqual({ ok: true });
  });

  it('a guest answering with a refused reply is unhealthy; one not answering is unreachable', async () => {
    const vm = {
      vmm: 'qemu' as const,
      pid: 1,
      controlSocket: '/nonexistent',
      taps: [],
      guestIp: '10.0.0.2',
      guestAgent: true,
    };
    const io = (fetchGuest: () => Promise<unknown>) => ({
      readProc: async () => '',
      blockStats: async () => ({ readBytes: 0, writeBytes: 0 }),
      tapCounters: async () => ({ rxBytes: 0, txBytes: 0 }),
      fetchGuest,
      now: () => 0,
      sleep: async () => {},
    });
    const refused = new VmMetricsSampler(io(() => Promise.reject(new GuestReplyRefused('too large'))));
    expect((await refused.sample('vm-1', vm)).guest.health).toBe('unhealthy');
    const wrongShape = new VmMetricsSampler(io(async () => ({ hello: 'world' })));
    expect((await wrongShape.sample('vm-1', vm)).guest.health).toBe('unhealthy');
    const down = new VmMetricsSampler(io(() => Promise.reject(new Error('ECONNREFUSED'))));
    expect((await down.sample('vm-1', vm)).guest.health).toBe('unreachable');
  });
});
