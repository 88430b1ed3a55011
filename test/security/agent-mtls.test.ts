import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type Server as TlsServer } from 'node:tls';
import { eq } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgentApp } from '../../packages/agent/src/app.ts';
import { agentKey, loadAgentTls, saveAgentTls } from '../../packages/agent/src/manager/tls.ts';
import type { VmService } from '../../packages/agent/src/vms/vms.service.ts';
import { managerCa } from '../../packages/manager/src/db/schema.ts';
import { AgentClient, HttpAgentApi } from '../../packages/manager/src/features/vms/agent-client.ts';
import { issueCertificate, newKeyPair, pemOfKey } from '../../packages/manager/src/security/x509.ts';
import { startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';

const HOUR = 3600_000;
const vms = { list: () => [] } as unknown as VmService;

/** A GET to the agent over TLS with the given client certificate (or none); the status and the problem code. */
function get(
  port: number,
  url: string,
  ca: string,
  client: { cert: string; key: string } | undefined,
  secret: string,
): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: url,
        ca,
        ...client,
        checkServerIdentity: () => undefined,
        headers: { authorization: `Bearer ${secret}` },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, code: text.startsWith('{') ? JSON.parse(text).code : undefined }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('manager ↔ agent mutual TLS', () => {
  let t: TestApp;
  let dataDir: string;
  let agent: ReturnType<typeof buildAgentApp>;
  let port: number;
  let host: { id: string; secret: string };
  let caPem: string;
  let caKeyPem: string;

  beforeAll(async () => {
    t = await startTestApp('pglite', { MANAGER_RECONCILER_DISABLED: 'true' }, undefined, { plainHttpAgents: false });
    dataDir = mkdtempSync(path.join(tmpdir(), 'nqvm-mtls-'));
    agent = buildAgentApp({
      vms,
      secret: () => host?.secret,
      log: pino({ level: 'silent' }),
      tls: { identity: undefined },
    });
    await agent.listen({ host: '127.0.0.1', port: 0 });
    port = (agent.server.address() as AddressInfo).port;
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name: 'tls-host', addr: `https://127.0.0.1:${port}` },
    });
    host = reg.json();
    const { key, publicKey } = await agentKey(dataDir);
    const issued = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${host.id}/certificate`,
      headers: { authorization: `Bearer ${host.secret}` },
      payload: { public_key: publicKey },
    });
    expect(issued.statusCode).toBe(201);
    const cert = issued.json() as { certificate: string; ca_certificate: string; not_after: string };
    await saveAgentTls(dataDir, cert.certificate, cert.ca_certificate);
    expect(await loadAgentTls(dataDir, host.id)).toBeTruthy();
    (agent.server as unknown as TlsServer).setSecureContext({ key, cert: cert.certificate, ca: cert.ca_certificate });
    caPem = cert.ca_certificate;
    const [row] = await t.database.db.select().from(managerCa).where(eq(managerCa.id, 1));
    caKeyPem = t.built.services.secrets.open(row!.keyEnc);
  });
  afterAll(async () => {
    await agent?.close();
    await t?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const clientCert = (o: { caKey?: string; caName?: string; cn?: string; notAfter?: Date }) => {
    const pair = newKeyPair();
    const cert = issueCertificate({
      kind: 'client',
      commonName: o.cn ?? 'nqvm-manager',
      publicKey: pair.publicKey,
      issuer: { key: createPrivateKey(o.caKey ?? caKeyPem), commonName: o.caName ?? 'nqvm manager CA' },
      notBefore: new Date(Date.now() - 2 * HOUR),
      notAfter: o.notAfter ?? new Date(Date.now() + HOUR),
    });
    return { cert, key: pemOfKey(pair.privateKey) };
  };

  it('the manager calls the agent with its client certificate and pins the agent to the host id', async () => {
    const client = new HttpAgentApi(new AgentClient({ tls: (id) => t.built.services.pki.agentTls(id) }));
    expect(await client.list({ hostId: host.id, addr: `https://127.0.0.1:${port}`, secret: host.secret })).toEqual([]);
    // The same agent taken for another host: its certificate names host.id, so the manager refuses it.
    const other = '00000000-0000-4000-8000-000000000001';
    const wrong = await client
      .list({ hostId: other, addr: `https://127.0.0.1:${port}`, secret: host.secret })
      .catch((e: unknown) => e);
    expect(wrong).toMatchObject({ status: 502, code: 'host_error' });
    expect(String((wrong as Error).message)).toMatch(/names .* not host/);
  });

  it('the agent refuses a client without a certificate, with one of another CA, an expired one, or not the manager’s', async () => {
    const url = '/agent/v1/vms';
    const good = t.built.services.pki.client;
    expect(await get(port, url, caPem, good, host.secret)).toEqual({ status: 200, code: undefined });

    const none = await get(port, url, caPem, undefined, host.secret);
    expect(none).toEqual({ status: 403, code: 'client_certificate_required' });

    const otherCa = newKeyPair();
    const foreign = clientCert({ caKey: pemOfKey(otherCa.privateKey) });
    expect(await get(port, url, caPem, foreign, host.secret)).toEqual({
      status: 403,
      code: 'client_certificate_required',
    });

    const expired = clientCert({ notAfter: new Date(Date.now() - HOUR) });
    expect(await get(port, url, caPem, expired, host.secret)).toEqual({
      status: 403,
      code: 'client_certificate_required',
    });

    const notManager = clientCert({ cn: host.id });
    expect(await get(port, url, caPem, notManager, host.secret)).toEqual({
      status: 403,
      code: 'client_certificate_required',
    });

    // The certificate is not instead of the host secret: both are needed.
    expect(await get(port, url, caPem, good, 'nqh_wrong')).toMatchObject({ status: 401 });
    // Health answers anyone (no certificate, no secret).
    expect((await get(port, '/agent/v1/health', caPem, undefined, '')).status).toBe(200);
  });

  it('the manager refuses an agent with a certificate of another CA, and an agent that serves plain HTTP', async () => {
    const rogueCa = newKeyPair();
    const rogueKey = newKeyPair();
    const rogueCert = issueCertificate({
      kind: 'server',
      commonName: host.id,
      publicKey: rogueKey.publicKey,
      issuer: { key: rogueCa.privateKey, commonName: 'nqvm manager CA' },
      altNames: ['127.0.0.1'],
      notBefore: new Date(Date.now() - HOUR),
      notAfter: new Date(Date.now() + HOUR),
    });
    const rogue = createServer({ key: pemOfKey(rogueKey.privateKey), cert: rogueCert }, (s) => s.end());
    await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', r));
    const roguePort = (rogue.address() as AddressInfo).port;
    try {
      const client = new HttpAgentApi(new AgentClient({ tls: (id) => t.built.services.pki.agentTls(id) }));
      const refused = await client
        .list({ hostId: host.id, addr: `https://127.0.0.1:${roguePort}`, secret: host.secret })
        .catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 502, code: 'host_error' });
      const plain = await client
        .list({ hostId: host.id, addr: 'http://127.0.0.1:9', secret: host.secret })
        .catch((e: unknown) => e);
      expect(plain).toMatchObject({ status: 502, code: 'host_error' });
      expect(String((plain as Error).message)).toMatch(/plain HTTP/);
    } finally {
      await new Promise((r) => rogue.close(r));
    }
  });

  it('issues certificates only to the host itself, for a sound public key', async () => {
    const { publicKey } = await agentKey(dataDir);
    const anon = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${host.id}/certificate`,
      payload: { public_key: publicKey },
    });
    expect(anon.statusCode).toBe(401);
    const junk = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${host.id}/certificate`,
      headers: { authorization: `Bearer ${host.secret}` },
      payload: { public_key: 'not a key' },
    });
    expect(junk.statusCode).toBe(400);
    expect(junk.json()).toMatchObject({ code: 'invalid_public_key', field: 'body.public_key' });
  });
});
