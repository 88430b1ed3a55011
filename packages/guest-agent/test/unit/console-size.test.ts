import { existsSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyConsoleSize, type ConsoleSize, consoleTty, parseConsoleSize } from '../../src/console-size';
import { execArgv } from '../../src/identity';
import { createLogger } from '../../src/log';
import { MetricsSampler } from '../../src/metrics';
import { createGuestServer, listen } from '../../src/server';
import { fakeProc } from '../fixtures/proc-source';

const TOKEN = 'vm-token-0123456789';
let server: Server | undefined;

afterEach(async () => {
  const s = server;
  if (s) await new Promise((r) => s.close(r));
  server = undefined;
});

function recorder() {
  const calls: [string, string[]][] = [];
  return { calls, exec: async (cmd: string, args: string[]) => void calls.push([cmd, args]) };
}

async function serve(apply: (s: ConsoleSize) => Promise<string>): Promise<string> {
  server = createGuestServer({
    sampler: new MetricsSampler(fakeProc()),
    logger: createLogger(() => {}),
    consoleSize: { token: () => TOKEN, host: () => '127.0.0.1', apply },
  });
  await listen(server, 0, '127.0.0.1');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/console-size`;
}

const post = (url: string, body: unknown, token: string | null = TOKEN) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('console size', () => {
  it('runs stty on the last active console tty with rows and cols', async () => {
    const r = recorder();
    const tty = await applyConsoleSize(
      { cols: 132, rows: 40 },
      { exec: r.exec, readActive: async () => 'tty0 ttyS0\n' },
    );
    expect(tty).toBe('ttyS0');
    expect(r.calls).toEqual([['stty', ['-F', '/dev/ttyS0', 'rows', '40', 'cols', '132']]]);
  });

  it('accepts integer sizes in range only', () => {
    expect(parseConsoleSize({ cols: 20, rows: 5 })).toEqual({ cols: 20, rows: 5 });
    expect(parseConsoleSize({ cols: 500, rows: 300 })).toEqual({ cols: 500, rows: 300 });
    for (const bad of [
      { cols: 19, rows: 24 },
      { cols: 80, rows: 301 },
      { cols: 80.5, rows: 24 },
      { cols: '80', rows: 24 },
    ])
      expect(typeof parseConsoleSize(bad)).toBe('string');
    expect(typeof parseConsoleSize(null)).toBe('string');
  });

  it('refuses console names that are not plain tty names', () => {
    expect(consoleTty('ttyAMA0\n')).toBe('ttyAMA0');
    for (const bad of ['', 'ttyS0/../../etc', '../ttyS0', 'sda', 'ttyS0;rm'])
      expect(consoleTty(bad), bad).toBeUndefined();
  });

  it('never lets a hostile console name or size reach a command (real exec)', async () => {
    const mark = join(tmpdir(), `nqvm-console-mark-${process.pid}`);
    rmSync(mark, { force: true });
    const payloads = [`ttyS0$(touch ${mark})`, `ttyS0;touch ${mark}`, `\`touch ${mark}\``, `ttyS0 ;rm -rf ${mark}`];
    for (const active of payloads)
      await expect(
        applyConsoleSize({ cols: 80, rows: 24 }, { exec: execArgv, readActive: async () => `tty0 ${active}` }),
      ).rejects.toThrow(/no usable console tty/);
    const sizes = [
      { cols: `80$(touch ${mark})`, rows: 24 },
      { cols: 80, rows: `;touch ${mark}` },
    ];
    for (const size of sizes)
      await expect(
        applyConsoleSize(size as unknown as ConsoleSize, { exec: execArgv, readActive: async () => 'ttyS0' }),
      ).rejects.toThrow(/must be an integer/);
    expect(existsSync(mark)).toBe(false);
  });

  it('POST /console-size applies a valid size with the VM token and answers which tty', async () => {
    const seen: ConsoleSize[] = [];
    const url = await serve(async (s) => {
      seen.push(s);
      return 'ttyS0';
    });
    const res = await post(url, { cols: 132, rows: 40 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, tty: 'ttyS0' });
    expect(seen).toEqual([{ cols: 132, rows: 40 }]);
  });

  it('POST /console-size answers 401 without the token, 400 for a bad size, 405 for GET, 500 when stty fails', async () => {
    let fail = false;
    const seen: ConsoleSize[] = [];
    const url = await serve(async (s) => {
      if (fail) throw new Error('stty: /dev/ttyS0: No such device');
      seen.push(s);
      return 'ttyS0';
    });
    expect((await post(url, { cols: 132, rows: 40 }, null)).status).toBe(401);
    expect((await post(url, { cols: 132, rows: 40 }, 'wrong-token')).status).toBe(401);
    for (const body of [{ cols: 10, rows: 40 }, { cols: 132 }, '[1,2]', 'not json']) {
      const res = await post(url, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/^invalid_/);
    }
    expect((await fetch(url)).status).toBe(405);
    fail = true;
    const failed = await post(url, { cols: 132, rows: 40 });
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ error: 'console_size_failed' });
    expect(seen).toEqual([]);
  });

  it('has no /console-size without a config to take the token from', async () => {
    server = createGuestServer({ sampler: new MetricsSampler(fakeProc()), logger: createLogger(() => {}) });
    await listen(server, 0, '127.0.0.1');
    const res = await post(`http://127.0.0.1:${(server.address() as AddressInfo).port}/console-size`, {
      cols: 80,
      rows: 24,
    });
    expect(res.status).toBe(404);
  });
});
