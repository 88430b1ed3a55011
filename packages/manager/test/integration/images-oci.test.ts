import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { OciLayout, type Registry, startRegistry } from '../support/oci-fixture.ts';

const USER = { name: 'puller', password: 'right-password' };

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Reads a path out of an ext4 image with debugfs (no mount): its text, or undefined when absent. */
function ext4Cat(image: string, path: string): string | undefined {
  const r = spawnSync('debugfs', ['-R', `cat ${path}`, image], { encoding: 'utf8' });
  if (/not found|File not found/i.test(r.stderr)) return undefined;
  return r.stdout;
}

function ext4Ls(image: string, dir: string): string[] {
  const r = spawnSync('debugfs', ['-R', `ls -p ${dir}`, image], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.split('/')[5] ?? '')
    .filter((n) => n && n !== '.' && n !== '..');
}

/** Sits between the manager and the registry: passes everything, or breaks one blob (a flipped byte, a cut). */
function faultProxy(upstream: string, fault: { digest: string; mode: 'corrupt' | 'cut' | 'none' }) {
  return createServer((req, res) => {
    const up = request(
      `http://${upstream}${req.url}`,
      { method: req.method, headers: { ...req.headers, host: upstream } },
      (u) => {
        const hit = fault.mode !== 'none' && req.url?.endsWith(`/blobs/${fault.digest}`) && u.statusCode === 200;
        if (!hit) {
          res.writeHead(u.statusCode ?? 502, u.headers);
          u.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        u.on('data', (c: Buffer) => chunks.push(c));
        u.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(200, u.headers);
          if (fault.mode === 'cut') {
            res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
            return;
          }
          // The last byte: tar padding after the archive's end, which only the digest check notices.
          const at = body.length - 1;
          body[at] = body[at]! ^ 0xff;
          res.end(body);
        });
      },
    );
    req.pipe(up);
  });
}

describe.each(DB_KINDS)('OCI image pulls on %s', (kind) => {
  let t: TestApp;
  let registry: Registry;
  let proxy: Server;
  let proxyHost: string;
  let root: string;
  const fault: { digest: string; mode: 'corrupt' | 'cut' | 'none' } = { digest: '', mode: 'none' };
  let upperLayer = '';
  let plainLayer = '';

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'nqvm-oci-'));
    registry = await startRegistry(await freePort(), USER);
    const layout = new OciLayout(root);
    const base = {
      compression: 'gzip' as const,
      files: {
        'app/keep.txt': 'kept\n',
        'app/gone.txt': 'deleted by the upper layer\n',
        'opaque/lower.txt': 'hidden by an opaque directory\n',
        'bin/run': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
      },
      symlinks: { 'app/link': 'keep.txt' },
    };
    const upper = {
      compression: 'zstd' as const,
      files: { 'app/.wh.gone.txt': '', 'opaque/.wh..wh..opq': '', 'opaque/upper.txt': 'from the upper layer\n' },
    };
    // Layers are built byte for byte the same each time: this is the digest the image below carries.
    upperLayer = layout.layer(upper).digest;
    const plain = { compression: 'none' as const, files: { 'x.txt': 'x\n' } };
    plainLayer = layout.layer(plain).digest;
    layout.tag('plain', [layout.image({ layers: [plain] })]);
    const config = {
      Entrypoint: ['/bin/run'],
      Cmd: ['--serve'],
      Env: ['PATH=/bin', 'GREETING=hello'],
      WorkingDir: '/app',
    };
    layout.tag('single', [layout.image({ layers: [base, upper], config })]);
    layout.tag('multi', [
      layout.image({ layers: [{ compression: 'none', files: { 'arch.txt': 'arm64\n' } }], architecture: 'arm64' }),
      layout.image({
        layers: [{ compression: 'gzip', files: { 'arch.txt': 'amd64\n' } }],
        config: { Cmd: ['/bin/sh'] },
      }),
    ]);
    layout.tag('arm-list', [
      layout.image({ layers: [plain], architecture: 'arm64' }),
      layout.image({ layers: [plain], architecture: 'riscv64' }),
    ]);
    layout.tag('arm-only', [layout.image({ layers: [plain], architecture: 'arm64' })]);
    await registry.push(layout, 'single', 'demo/app');
    await registry.push(layout, 'arm-list', 'demo/app');
    await registry.push(layout, 'arm-only', 'demo/app');
    await registry.push(layout, 'multi', 'demo/app');
    await registry.push(layout, 'plain', 'demo/app');
    proxy = faultProxy(registry.host, fault);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyHost = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    t = await startTestApp(kind, { NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.0/8' });
  });
  afterAll(async () => {
    await t?.close();
    proxy?.close();
    await registry?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const pull = (
    name: string,
    reference: string,
    creds: Record<string, string> = { username: USER.name, password: USER.password },
  ) =>
    t.request({
      method: 'POST',
      url: '/v1/images',
      payload: { name, kind: 'rootfs', source: { type: 'oci', reference, ...creds } },
    });

  async function settled(id: string): Promise<{ state: string; [k: string]: unknown } | undefined> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await t.request({ method: 'GET', url: `/v1/images/${id}` });
      if (r.statusCode === 404) return undefined;
      const img = r.json();
      if (img.state === 'ready') return img;
      if (Date.now() > deadline) throw new Error('the pull did not finish');
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  const storeFile = (sha: string) => join(t.dataDir, 'images', 'sha256', sha.slice(0, 2), sha);
  const tmpLeft = () => readdirSync(join(t.dataDir, 'images', 'tmp'));

  it('pulls a single-arch image: layers applied in order with whiteouts, config recorded', async () => {
    const res = await pull(`single-${kind}`, `${registry.host}/demo/app:single`);
    expect(res.statusCode, res.body).toBe(202);
    const img = await settled(res.json().id);
    expect(img).toMatchObject({
      state: 'ready',
      kind: 'rootfs',
      source: {
        type: 'oci',
        reference: `${registry.host}/demo/app:single`,
        config: {
          entrypoint: ['/bin/run'],
          cmd: ['--serve'],
          env: ['PATH=/bin', 'GREETING=hello'],
          working_dir: '/app',
          user: '',
        },
      },
    });
    expect((img as unknown as { source: { digest: string } }).source.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    const file = storeFile(img?.sha256 as string);
    expect(ext4Cat(file, '/app/keep.txt')).toBe('kept\n');
    expect(ext4Cat(file, '/app/gone.txt')).toBeUndefined();
    expect(ext4Ls(file, '/opaque')).toEqual(['upper.txt']);
    expect(ext4Ls(file, '/app').sort()).toEqual(['keep.txt', 'link']);
    for (const d of ['dev', 'proc', 'sys', 'tmp', 'run']) expect(ext4Ls(file, '/')).toContain(d);
    expect(tmpLeft()).toEqual([]);
  });

  it('follows a multi-arch index to its linux/amd64 image', async () => {
    const res = await pull(`multi-${kind}`, `${registry.host}/demo/app:multi`);
    expect(res.statusCode, res.body).toBe(202);
    const img = await settled(res.json().id);
    expect(ext4Cat(storeFile(img?.sha256 as string), '/arch.txt')).toBe('amd64\n');
    expect(img?.source).toMatchObject({ config: { entrypoint: [], cmd: ['/bin/sh'] } });
  });

  it("refuses an index or a manifest without the host's architecture with a 400 naming what it has", async () => {
    const list = await pull(`armlist-${kind}`, `${registry.host}/demo/app:arm-list`);
    expect(list.json()).toMatchObject({
      status: 400,
      code: 'oci_platform_unavailable',
      field: 'body.source.reference',
    });
    expect(list.json().detail).toContain('linux/arm64, linux/riscv64');
    expect(list.json().detail).toContain('no linux/amd64 image');
    const one = await pull(`armonly-${kind}`, `${registry.host}/demo/app:arm-only`);
    expect(one.json()).toMatchObject({ status: 400, code: 'oci_platform_unavailable' });
    expect(one.json().detail).toContain('it has linux/arm64');
    const names = (await t.request({ method: 'GET', url: `/v1/images?q=arm` })).json().items;
    expect(names).toEqual([]);
  });

  it('answers a wrong registry password with a 400 before anything is stored', async () => {
    const res = await pull(`badpw-${kind}`, `${registry.host}/demo/app:single`, {
      username: USER.name,
      password: 'wrong',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'registry_auth_failed', field: 'body.source.password' });
    expect(res.body).not.toContain('wrong');
    const none = await pull(`nocreds-${kind}`, `${registry.host}/demo/app:single`, {});
    expect(none.json()).toMatchObject({ status: 400, code: 'registry_auth_failed', field: 'body.source.username' });
    expect(
      (await t.request({ method: 'GET', url: `/v1/images?q=-${kind}` }))
        .json()
        .items.map((i: { name: string }) => i.name),
    ).not.toContain(`badpw-${kind}`);
  });

  it('answers an unknown tag with a 422 and an internal registry without the allow-list with a 400', async () => {
    const res = await pull(`notag-${kind}`, `${registry.host}/demo/app:nope`);
    expect(res.json()).toMatchObject({ status: 422, code: 'oci_manifest_unknown', field: 'body.source.reference' });
    const bad = await pull(`badref-${kind}`, 'Demo/App');
    expect(bad.json()).toMatchObject({ status: 400, code: 'invalid_reference' });
  });

  it.each(['corrupt', 'cut'] as const)('leaves nothing behind when a layer arrives %s', async (mode) => {
    fault.digest = mode === 'corrupt' ? plainLayer : upperLayer;
    fault.mode = mode;
    try {
      const before = readdirSync(join(t.dataDir, 'images', 'sha256'), { recursive: true });
      const res = await pull(
        `fault-${mode}-${kind}`,
        `${proxyHost}/demo/app:${mode === 'corrupt' ? 'plain' : 'single'}`,
      );
      expect(res.statusCode, res.body).toBe(202);
      expect(await settled(res.json().id)).toBeUndefined();
      expect(readdirSync(join(t.dataDir, 'images', 'sha256'), { recursive: true })).toEqual(before);
      expect(tmpLeft()).toEqual([]);
      const events = (await t.request({ method: 'GET', url: `/v1/events?resource_id=${res.json().id}` })).json();
      expect(JSON.stringify(events)).toMatch(mode === 'corrupt' ? /layer digest mismatch/ : /"result":"error"/);
    } finally {
      fault.mode = 'none';
    }
  });

  it('a pull deleted while running leaves nothing behind', async () => {
    const res = await pull(`cancel-${kind}`, `${proxyHost}/demo/app:single`);
    expect(res.statusCode).toBe(202);
    expect((await t.request({ method: 'DELETE', url: `/v1/images/${res.json().id}` })).statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: `/v1/images/${res.json().id}` })).statusCode).toBe(404);
    expect(tmpLeft()).toEqual([]);
    expect(existsSync(join(t.dataDir, 'images', 'tmp'))).toBe(true);
  });
});
