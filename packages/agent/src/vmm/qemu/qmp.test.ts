import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { QmpCommandError, QmpUnavailable } from './errors.js';
import { QmpClient, type QmpEvent } from './qmp.js';

type Handler = (msg: { execute: string; arguments?: Record<string, unknown>; id?: string }, sock: Socket) => void;

const GREETING = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 } }, capabilities: ['oob'] } };

/** A tiny QMP server: greets, then hands each JSON line to `handler`; records what it received. */
async function fakeQmp(handler: Handler): Promise<{ socketPath: string; received: string[]; close: () => void }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nqvm-qmp-'));
  const socketPath = path.join(dir, 'qmp.sock');
  const received: string[] = [];
  const server: Server = createServer((sock) => {
    sock.write(`${JSON.stringify(GREETING)}\r\n`);
    let buf = '';
    sock.on('data', (b) => {
      buf += b.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        received.push(line);
        handler(JSON.parse(line), sock);
      }
    });
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  return {
    socketPath,
    received,
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const reply = (sock: Socket, obj: unknown) => sock.write(`${JSON.stringify(obj)}\r\n`);
let servers: Array<{ close: () => void }> = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

describe('QmpClient', () => {
  test('negotiates capabilities, matches replies by id even out of order, and surfaces events', async () => {
    const held: Array<() => void> = [];
    const srv = await fakeQmp((msg, sock) => {
      if (msg.execute === 'qmp_capabilities') {
        reply(sock, { return: {}, id: msg.id });
        return;
      }
      if (msg.execute === 'query-status') {
        // answer the first query only after the second, with an event in between
        held.push(() => reply(sock, { return: { status: 'running', running: true }, id: msg.id }));
        if (held.length === 2) {
          reply(sock, { event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } });
          held.pop()?.();
          held.pop()?.();
        }
        return;
      }
      reply(sock, {
        error: { class: 'CommandNotFound', desc: `The command ${msg.execute} has not been found` },
        id: msg.id,
      });
    });
    servers.push(srv);
    const qmp = await QmpClient.connect(srv.socketPath);
    expect(qmp.greeting.QMP.version.qemu.major).toBe(7);
    const events: QmpEvent[] = [];
    qmp.onEvent((e) => events.push(e));
    const stopped = qmp.waitForEvent('STOP', 2000);
    const [a, b] = await Promise.all([qmp.execute('query-status'), qmp.execute('query-status')]);
    expect(a).toEqual({ status: 'running', running: true });
    expect(b).toEqual(a);
    expect((await stopped).event).toBe('STOP');
    expect(events.map((e) => e.event)).toEqual(['STOP']);
    await expect(qmp.execute('nope')).rejects.toBeInstanceOf(QmpCommandError);
    await expect(qmp.execute('nope')).rejects.toThrow(/CommandNotFound/);
    expect(srv.received.map((l) => JSON.parse(l).execute)).toEqual([
      'qmp_capabilities',
      'query-status',
      'query-status',
      'nope',
      'nope',
    ]);
    await qmp.close();
  });

  test('sends arguments and times out a command with no reply', async () => {
    const srv = await fakeQmp((msg, sock) => {
      if (msg.execute === 'qmp_capabilities') reply(sock, { return: {}, id: msg.id });
    });
    servers.push(srv);
    const qmp = await QmpClient.connect(srv.socketPath);
    await expect(qmp.execute('balloon', { value: 1 }, { timeoutMs: 100 })).rejects.toBeInstanceOf(QmpUnavailable);
    expect(JSON.parse(srv.received[1] ?? '{}')).toMatchObject({ execute: 'balloon', arguments: { value: 1 } });
    await qmp.close();
  });

  test('fails pending commands when the server goes away', async () => {
    const srv = await fakeQmp((msg, sock) => {
      if (msg.execute === 'qmp_capabilities') reply(sock, { return: {}, id: msg.id });
      else sock.destroy();
    });
    servers.push(srv);
    const qmp = await QmpClient.connect(srv.socketPath);
    await expect(qmp.execute('quit')).rejects.toThrow(/closed/);
    await qmp.closed;
    await expect(qmp.execute('query-status')).rejects.toBeInstanceOf(QmpUnavailable);
  });

  test('refuses a socket with nobody listening', async () => {
    await expect(QmpClient.connect('/nonexistent/qmp.sock', { timeoutMs: 200 })).rejects.toBeInstanceOf(QmpUnavailable);
  });
});
