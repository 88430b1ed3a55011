import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/harness.ts';
import { OciLayout, type Registry, startRegistry } from '../support/oci-fixture.ts';
import { startTokenServer, type TokenServer } from '../support/oci-token.ts';

const USER = { name: 'token-puller', password: 'token-password' };

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * Registry Bearer auth end to end: docker-registry configured for `auth.token` answers 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the manager asks the token service (a JWT issuer written
 * here, loopback only) with the Basic credentials, then retries with the token. Which requests reach the token
 * service is recorded, so the test sees the flow, not only its outcome. The flow touches no SQL: PGlite only.
 */
describe('OCI pulls from a registry that wants Bearer tokens', () => {
  let t: TestApp;
  let tokens: TokenServer;
  let registry: Registry;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'nqvm-oci-token-'));
    tokens = await startTokenServer(root, USER);
    registry = await startRegistry(await freePort(), USER, tokens);
    const layout = new OciLayout(root);
    layout.tag('1', [
      layout.image({ layers: [{ compression: 'gzip', files: { 'hello.txt': 'token\n' } }], config: { Cmd: ['/x'] } }),
    ]);
    await registry.push(layout, '1', 'private/app');
    t = await startTestApp('pglite', { NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.0/8' });
  });
  afterAll(async () => {
    await t?.close();
    await registry?.stop();
    await tokens?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const pull = (name: string, creds: Record<string, string>) =>
    t.request({
      method: 'POST',
      url: '/v1/images',
      payload: { name, kind: 'rootfs', source: { type: 'oci', reference: `${registry.host}/private/app:1`, ...creds } },
    });

  it('gets a token from the realm with the credentials, for the repository pull scope, and pulls', async () => {
    tokens.log.requests.length = 0;
    const res = await pull('token-ok', { username: USER.name, password: USER.password });
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().id as string;
    const deadline = Date.now() + 60_000;
    let img: { state: string; sha256: string } | undefined;
    while (Date.now() < deadline) {
      img = (await t.request({ method: 'GET', url: `/v1/images/${id}` })).json();
      if (img?.state === 'ready') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(img?.state).toBe('ready');
    const file = join(t.dataDir, 'images', 'sha256', img!.sha256.slice(0, 2), img!.sha256);
    expect(spawnSync('debugfs', ['-R', 'cat /hello.txt', file], { encoding: 'utf8' }).stdout).toBe('token\n');
    expect(tokens.log.requests.length).toBeGreaterThanOrEqual(1);
    expect(tokens.log.requests[0]).toEqual({
      service: tokens.service,
      scope: 'repository:private/app:pull',
      basic: true,
    });
  });

  it('a wrong password is refused by the token service: a 400 naming the password field, nothing stored', async () => {
    const res = await pull('token-bad', { username: USER.name, password: 'not-the-password' });
    expect(res.json()).toMatchObject({ status: 400, code: 'registry_auth_failed', field: 'body.source.password' });
    expect(res.body).not.toContain('not-the-password');
    const anon = await pull('token-anon', {});
    expect(anon.json()).toMatchObject({ status: 400, code: 'registry_auth_failed', field: 'body.source.username' });
    expect(tokens.log.requests.at(-1)).toMatchObject({ basic: false, scope: 'repository:private/app:pull' });
    const items = (await t.request({ method: 'GET', url: '/v1/images?q=token-' })).json().items;
    expect(items.map((i: { name: string }) => i.name)).toEqual(['token-ok']);
  });
});
