import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { NewIdentity } from '../../src/identity';
import { createLogger } from '../../src/log';
import { MetricsSampler } from '../../src/metrics';
import { createGuestServer, listen } from '../../src/server';
import { fakeProc } from '../fixtures/proc-source';

const TOKEN = 'vm-token-0123456789';
const IDENTITY = {
  vm_id: 'vm-2',
  token: 'new-token-abcdef',
  hostname: 'clone-2',
  ip: '10.88.0.9/24',
  gateway: '10.88.0.1',
  mac: '52:54:00:00:00:09',
  old_ip: '10.88.0.5',
  entropy: '',
};
let server: Server | undefined;

afterEach(async () => {
  const s = server;
  if (s) await new Promise((r) => s.close(r));
  server = undefined;
});

async function serve(host: string, applied: NewIdentity[], kicks: number[] = []): Promise<string> {
  server = createGuestServer({
    sampler: new MetricsSampler(fakeProc()),
    logger: createLogger(() => {}),
    identity: { token: () => TOKEN, host: () => host, apply: async (id) => void applied.push(id) },
    reportNow: { token: () => TOKEN, host: () => host, kick: () => void kicks.push(Date.now()) },
  });
  await listen(server, 0, '127.0.0.1');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/identity`;
}

const post = (url: string, token: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(IDENTITY),
  });

describe('POST /identity takes a new identity from the host agent only', () => {
  it('refuses any other source with 403, even holding the right token (a clone of this VM has it)', async () => {
    const applied: NewIdentity[] = [];
    const res = await post(await serve('10.88.0.1', applied), TOKEN);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'forbidden' });
    expect(applied).toEqual([]);
  });

  it('from the host agent: a wrong token is 401, the right one is 202 and the identity applied', async () => {
    const applied: NewIdentity[] = [];
    const url = await serve('127.0.0.1', applied);
    expect((await post(url, 'wrong-token')).status).toBe(401);
    expect((await post(url, TOKEN)).status).toBe(202);
    await expect.poll(() => applied.length).toBe(1);
    expect(applied[0]).toMatchObject({ vm_id: 'vm-2', token: 'new-token-abcdef' });
  });
});

describe('POST /report makes the guest report now, for the host agent only', () => {
  const ask = (url: string, token: string) =>
    fetch(url.replace(/\/identity$/, '/report'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{}',
    });

  it('refuses another source (403) and a wrong token (401); the host with the token gets 202 and a report', async () => {
    const kicks: number[] = [];
    expect((await ask(await serve('10.88.0.1', [], kicks), TOKEN)).status).toBe(403);
    await new Promise((r) => server?.close(r));
    const url = await serve('127.0.0.1', [], kicks);
    expect((await ask(url, 'wrong-token')).status).toBe(401);
    expect(kicks).toEqual([]);
    const res = await ask(url, TOKEN);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ ok: true });
    expect(kicks).toHaveLength(1);
  });
});
