import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file in the content-addressed store. */
export function storedFiles(dataDir: string): string[] {
  const root = join(dataDir, 'images', 'sha256');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => d.name);
}

describe.each(DB_KINDS)('image registry on %s', (kind) => {
  let t: TestApp;
  let root: string;
  const kernel = randomBytes(256 * 1024);

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'nqvm-imgroot-'));
    writeFileSync(join(root, 'vmlinux.bin'), kernel);
    mkdirSync(join(root, 'sub'));
    writeFileSync(join(root, 'sub', 'initrd.img'), randomBytes(1000));
    symlinkSync(join(root, 'vmlinux.bin'), join(root, 'inside-link'));
    t = await startTestApp(kind, { MANAGER_IMAGE_ROOT: root, MANAGER_ALLOW_IMAGE_PATHS: 'true' });
  });
  afterAll(async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  const create = (payload: unknown) => t.request({ method: 'POST', url: '/v1/images', payload: payload as object });
  const upload = (name: string, kind: string, body: Buffer) =>
    t.request({
      method: 'POST',
      url: `/v1/images/upload?name=${name}&kind=${kind}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: body,
    });

  it('copies a file under the image root into the store and hashes it itself', async () => {
    const res = await create({ name: 'k-path', kind: 'kernel', source: { type: 'path', path: 'vmlinux.bin' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      name: 'k-path',
      kind: 'kernel',
      state: 'ready',
      sha256: sha(kernel),
      size_bytes: kernel.length,
      source: { type: 'path', path: 'vmlinux.bin' },
    });
    expect(storedFiles(t.dataDir)).toContain(sha(kernel));
    const viaLink = await create({ name: 'k-link', kind: 'kernel', source: { type: 'path', path: 'inside-link' } });
    expect(viaLink.statusCode).toBe(201);
    const abs = await create({
      name: 'i-abs',
      kind: 'initrd',
      source: { type: 'path', path: join(root, 'sub/initrd.img') },
    });
    expect(abs.statusCode).toBe(201);
  });

  it('refuses .., absolute paths outside the root and symlink escapes, naming body.source.path', async () => {
    symlinkSync('/etc/passwd', join(root, 'escape'));
    symlinkSync('/etc', join(root, 'etcdir'));
    for (const path of [
      '../../etc/passwd',
      '/etc/passwd',
      'escape',
      'etcdir/passwd',
      'sub/../vmlinux.bin',
      'missing',
      'sub',
    ]) {
      const res = await create({ name: 'bad-path', kind: 'kernel', source: { type: 'path', path } });
      expect(res.statusCode, path).toBe(400);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(res.json().field, path).toBe('body.source.path');
    }
    const list = await t.request({ method: 'GET', url: '/v1/images?q=bad-path' });
    expect(list.json().items).toEqual([]);
  });

  it('uploads a raw octet-stream body; identical content shares one stored file until the last user goes', async () => {
    const up = await upload('k-upload', 'kernel', kernel);
    expect(up.statusCode).toBe(201);
    expect(up.json()).toMatchObject({ state: 'ready', sha256: sha(kernel), source: { type: 'upload' } });
    expect(storedFiles(t.dataDir).filter((f) => f === sha(kernel))).toHaveLength(1);
    const ids = (await t.request({ method: 'GET', url: '/v1/images?q=k-' }))
      .json()
      .items.map((i: { id: string }) => i.id);
    expect(ids).toHaveLength(3);
    for (const id of ids.slice(0, 2))
      expect((await t.request({ method: 'DELETE', url: `/v1/images/${id}` })).statusCode).toBe(204);
    expect(storedFiles(t.dataDir)).toContain(sha(kernel));
    const last = await t.request({ method: 'GET', url: `/v1/images/${ids[2]}/content` });
    expect(sha(last.rawPayload)).toBe(sha(kernel));
    expect((await t.request({ method: 'DELETE', url: `/v1/images/${ids[2]}` })).statusCode).toBe(204);
    expect(storedFiles(t.dataDir)).not.toContain(sha(kernel));
  });

  it('makes a blank volume that is a real ext4 filesystem', async () => {
    const res = await create({ name: 'vol-8', kind: 'volume', source: { type: 'blank', size_mib: 8 } });
    expect(res.statusCode).toBe(201);
    const img = res.json();
    expect(img).toMatchObject({ state: 'ready', size_bytes: 8 * 1024 * 1024, source: { type: 'blank', size_mib: 8 } });
    const file = join(t.dataDir, 'images', 'sha256', img.sha256.slice(0, 2), img.sha256);
    expect(statSync(file).size).toBe(8 * 1024 * 1024);
    expect(execFileSync('blkid', ['-o', 'value', '-s', 'TYPE', file]).toString().trim()).toBe('ext4');
    const wrongKind = await create({ name: 'vol-k', kind: 'kernel', source: { type: 'blank', size_mib: 8 } });
    expect(wrongKind.statusCode).toBe(422);
    expect(wrongKind.json().field).toBe('body.kind');
  });

  it('serves content with range requests to users and to host agents with their secret', async () => {
    const body = randomBytes(100_000);
    const img = (await upload('ranged', 'rootfs', body)).json();
    const url = `/v1/images/${img.id}/content`;
    const full = await t.request({ method: 'GET', url });
    expect(full.statusCode).toBe(200);
    expect(full.headers['accept-ranges']).toBe('bytes');
    expect(full.headers['content-length']).toBe('100000');
    expect(full.rawPayload.equals(body)).toBe(true);
    const part = await t.request({ method: 'GET', url, headers: { range: 'bytes=10-19' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 10-19/100000');
    expect(part.rawPayload.equals(body.subarray(10, 20))).toBe(true);
    const tail = await t.request({ method: 'GET', url, headers: { range: 'bytes=-5' } });
    expect(tail.rawPayload.equals(body.subarray(99_995))).toBe(true);
    const bad = await t.request({ method: 'GET', url, headers: { range: 'bytes=100000-' } });
    expect(bad.statusCode).toBe(416);
    expect(bad.headers['content-range']).toBe('bytes */100000');
    expect(bad.json()).toMatchObject({ code: 'range_not_satisfiable', field: 'headers.range' });

    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name: 'img-host', addr: 'http://127.0.0.1:9' },
    });
    const { id: hostId, secret } = reg.json();
    const asHost = await t.app.inject({
      method: 'GET',
      url,
      headers: { authorization: `Bearer ${secret}`, 'x-nqvm-host-id': hostId, range: 'bytes=0-3' },
    });
    expect(asHost.statusCode).toBe(206);
    expect(asHost.rawPayload.equals(body.subarray(0, 4))).toBe(true);
    const wrong = await t.app.inject({
      method: 'GET',
      url,
      headers: { authorization: 'Bearer nope', 'x-nqvm-host-id': hostId },
    });
    expect(wrong.statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url })).statusCode).toBe(401);
  });

  it('renames and edits the description; a taken name is 409 image_name_taken on body.name', async () => {
    const a = (await upload('rename-a', 'initrd', randomBytes(10))).json();
    await upload('rename-b', 'initrd', randomBytes(10));
    const ok = await t.request({
      method: 'PATCH',
      url: `/v1/images/${a.id}`,
      payload: { name: 'rename-c', description: 'renamed' },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ name: 'rename-c', description: 'renamed', sha256: a.sha256 });
    const taken = await t.request({ method: 'PATCH', url: `/v1/images/${a.id}`, payload: { name: 'rename-b' } });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ code: 'image_name_taken', field: 'body.name' });
    const ev = await t.request({
      method: 'GET',
      url: `/v1/events?resource_type=image&resource_id=${a.id}&action=update`,
    });
    expect(ev.json().items[0]).toMatchObject({
      actor: 'user:admin',
      detail: { name: 'rename-c', previous_name: 'rename-a' },
    });
  });

  it('answers concurrent creations of one name with versions 1 and 2, and of one name:tag with one 201 and one 409', async () => {
    const both = await Promise.all([
      create({ name: 'twin', kind: 'volume', source: { type: 'blank', size_mib: 8 } }),
      create({ name: 'twin', kind: 'volume', source: { type: 'blank', size_mib: 8 } }),
    ]);
    expect(both.map((r) => r.statusCode)).toEqual([201, 201]);
    expect(both.map((r) => r.json().version).sort()).toEqual([1, 2]);
    const tagged = await Promise.all([
      create({ name: 'twin', tag: 'stable', kind: 'volume', source: { type: 'blank', size_mib: 8 } }),
      create({ name: 'twin', tag: 'stable', kind: 'volume', source: { type: 'blank', size_mib: 8 } }),
    ]);
    expect(tagged.map((r) => r.statusCode).sort()).toEqual([201, 409]);
    expect(tagged.find((r) => r.statusCode === 409)!.json()).toMatchObject({
      code: 'image_name_taken',
      field: 'body.tag',
    });
  });

  it('lists by name with kind, state and name filters and cursor pages', async () => {
    for (let i = 0; i < 5; i++) await upload(`page-${i}`, 'initrd', Buffer.from(`p${i}`));
    const first = await t.request({ method: 'GET', url: '/v1/images?q=page-&limit=2&kind=initrd&state=ready' });
    expect(first.json().items.map((i: { name: string }) => i.name)).toEqual(['page-0', 'page-1']);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.request({
        method: 'GET',
        url: `/v1/images?q=page-&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      });
      seen.push(...res.json().items.map((i: { name: string }) => i.name));
      cursor = res.json().next_cursor;
    } while (cursor);
    expect(seen).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    const one = await t.request({ method: 'GET', url: `/v1/images/${first.json().items[0].id}` });
    expect(first.json().items[0]).toEqual(one.json());
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    const kernels = await t.request({ method: 'GET', url: '/v1/images?q=page-&kind=kernel' });
    expect(kernels.json().items).toEqual([]);
  });
});
