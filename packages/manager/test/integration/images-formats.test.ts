import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A raw disk whose blocks differ (so a conversion that loses or moves one shows), with a zero run in the middle. */
const raw = Buffer.concat([randomBytes(MiB), Buffer.alloc(2 * MiB), randomBytes(MiB)]);

function run(cmd: string, args: string[], input?: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 64 * MiB });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(DB_KINDS)('disk formats and compressed images on %s', (kind) => {
  let t: TestApp;
  let dir: string;
  let origin: Server;
  let base: string;
  const served = new Map<string, Buffer>();
  const files: Record<string, Buffer> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nqvm-formats-'));
    const rawPath = join(dir, 'disk.raw');
    writeFileSync(rawPath, raw);
    for (const fmt of ['qcow2', 'vmdk', 'vhdx']) {
      run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', fmt, rawPath, join(dir, `disk.${fmt}`)]);
      files[fmt] = readFileSync(join(dir, `disk.${fmt}`));
    }
    files.gz = gzipSync(raw);
    files.xz = run('xz', ['-c', '-T1'], raw);
    files.zst = run('zstd', ['-c', '-q'], raw);
    files['qcow2.xz'] = run('xz', ['-c', '-T1'], files.qcow2);
    // A qcow2 that names a host file as its backing file: converting it would read that file.
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', rawPath, join(dir, 'overlay.qcow2')]);
    files.overlay = readFileSync(join(dir, 'overlay.qcow2'));
    files.descriptor = Buffer.from(
      '# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "/etc/passwd" 0\n',
    );
    const broken = Buffer.from(files.qcow2!);
    broken.writeUInt32BE(0x7fffffff, 40); // the L1 table's size: far beyond the file
    files.brokenQcow2 = broken;
    files.brokenXz = Buffer.concat([files.xz.subarray(0, 4096), randomBytes(4096)]);

    for (const k of ['xz', 'qcow2']) served.set(`/disk.${k}`, files[k]!);
    origin = createServer((req, res) => {
      const body = served.get(req.url ?? '');
      if (body) res.writeHead(200, { 'content-length': body.length }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    t = await startTestApp(kind, { NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.0/8' });
  });
  afterAll(async () => {
    await t.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const upload = (name: string, body: Buffer) =>
    t.request({
      method: 'POST',
      url: `/v1/images/upload?name=${name}&kind=rootfs`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: body,
    });
  const content = async (id: string) =>
    (await t.request({ method: 'GET', url: `/v1/images/${id}/content` })).rawPayload;
  const storeEmpty = () => {
    const tmp = join(t.dataDir, 'images', 'tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  };

  it.each([
    ['gzip', 'gz'],
    ['xz', 'xz'],
    ['zstd', 'zst'],
  ])('stores a %s-compressed raw image decompressed, hashed as the raw image', async (compression, ext) => {
    const res = await upload(`raw-${ext}`, files[ext]!);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ state: 'ready', sha256: sha(raw), size_bytes: raw.length });
    expect(sha(await content(res.json().id))).toBe(sha(raw));
    const events = await t.request({ method: 'GET', url: `/v1/events?resource_id=${res.json().id}` });
    expect(events.json().items[0].detail).toMatchObject({ compression, source_sha256: sha(files[ext]!) });
  });

  it.each(['qcow2', 'vmdk', 'vhdx'])('converts a %s image to the raw disk it holds', async (fmt) => {
    const res = await upload(`disk-${fmt}`, files[fmt]!);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ state: 'ready', sha256: sha(raw), size_bytes: raw.length });
    expect(sha(await content(res.json().id))).toBe(sha(raw));
    storeEmpty();
  });

  it('unpacks an xz-compressed qcow2: decompressed while streaming, then converted', async () => {
    const res = await upload('qcow2-xz', files['qcow2.xz']!);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().sha256).toBe(sha(raw));
  });

  it.each([
    ['a qcow2 with a backing file', 'overlay', /backing file/],
    ['a VMDK descriptor naming a host file', 'descriptor', /VMDK descriptor/],
    ['a damaged qcow2', 'brokenQcow2', /qcow2/],
    ['a damaged xz stream', 'brokenXz', /xz stream is damaged/],
  ])('refuses %s with 422 image_format_invalid and leaves nothing behind', async (_what, key, detail) => {
    const res = await upload(`bad-${key.toLowerCase()}`, files[key]!);
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json()).toMatchObject({ code: 'image_format_invalid', field: 'body.source' });
    expect(res.json().detail).toMatch(detail);
    const list = await t.request({ method: 'GET', url: `/v1/images?q=bad-${key.toLowerCase()}` });
    expect(list.json().items).toEqual([]);
    storeEmpty();
  });

  it('checks a URL import sha256 against the file as served (compressed), and stores the raw image', async () => {
    const ok = await t.request({
      method: 'POST',
      url: '/v1/images',
      payload: {
        name: 'url-xz',
        kind: 'rootfs',
        source: { type: 'url', url: `${base}/disk.xz`, sha256: sha(files.xz!) },
      },
    });
    expect(ok.statusCode, ok.body).toBe(202);
    const ready = await until('the xz import', async () => {
      const img = (await t.request({ method: 'GET', url: `/v1/images/${ok.json().id}` })).json();
      return img.state === 'ready' ? img : undefined;
    });
    expect(ready).toMatchObject({ sha256: sha(raw), size_bytes: raw.length });

    // The raw image's hash is not the served file's: the import fails and leaves nothing.
    const wrong = await t.request({
      method: 'POST',
      url: '/v1/images',
      payload: {
        name: 'url-qcow2',
        kind: 'rootfs',
        source: { type: 'url', url: `${base}/disk.qcow2`, sha256: sha(raw) },
      },
    });
    expect(wrong.statusCode).toBe(202);
    const id = wrong.json().id as string;
    await until('the failed import to be gone', async () =>
      (await t.request({ method: 'GET', url: `/v1/images/${id}` })).statusCode === 404 ? true : undefined,
    );
    const events = await t.request({ method: 'GET', url: `/v1/events?resource_id=${id}` });
    expect(events.body).toContain(`sha256 mismatch: expected ${sha(raw)}, got ${sha(files.qcow2!)}`);
    storeEmpty();
  });
});
