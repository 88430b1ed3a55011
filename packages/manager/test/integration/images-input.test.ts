import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const NOPE = '00000000-0000-4000-8000-000000000000';
const MARK = join(tmpdir(), `nqvm-inject-mark-${process.pid}`);
const PAYLOADS = [`$(touch ${MARK})`, `;touch ${MARK}`, `\`touch ${MARK}\``, `x && touch ${MARK}`, '-F'];

describe.each(DB_KINDS)('image and template bad input on %s', (kind) => {
  let t: TestApp;
  let imageId: string;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'nqvm-imgroot-'));
    writeFileSync(join(root, 'k.bin'), 'kernel');
    t = await startTestApp(kind);
    const up = await t.request({
      method: 'POST',
      url: '/v1/images/upload?name=existing&kind=kernel&tag=v1',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from('abc'),
    });
    imageId = up.json().id;
  });
  afterAll(async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  const json = (method: InjectOptions['method'], url: string, payload?: unknown) =>
    ({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}) }) as InjectOptions;
  const blank = { type: 'blank', size_mib: 8 };

  const cases: [string, () => InjectOptions, number, string | null][] = [
    ['list: limit 0', () => json('GET', '/v1/images?limit=0'), 400, 'query.limit'],
    ['list: limit 501', () => json('GET', '/v1/images?limit=501'), 400, 'query.limit'],
    ['list: unknown kind', () => json('GET', '/v1/images?kind=disk'), 400, 'query.kind'],
    ['list: unknown state', () => json('GET', '/v1/images?state=failed'), 400, 'query.state'],
    ['list: garbage cursor', () => json('GET', '/v1/images?cursor=%24%24%24'), 400, 'query.cursor'],
    ['list: unknown parameter', () => json('GET', '/v1/images?sort=name'), 400, 'query.sort'],
    ['create: empty body', () => json('POST', '/v1/images', {}), 400, 'body.name'],
    [
      'create: unknown field',
      () => json('POST', '/v1/images', { name: 'a', kind: 'volume', source: blank, x: 1 }),
      400,
      'body.x',
    ],
    [
      'create: name with a slash',
      () => json('POST', '/v1/images', { name: 'a/b', kind: 'volume', source: blank }),
      400,
      'body.name',
    ],
    [
      'create: wrong kind',
      () => json('POST', '/v1/images', { name: 'a', kind: 'disk', source: blank }),
      400,
      'body.kind',
    ],
    [
      'create: size as text',
      () => json('POST', '/v1/images', { name: 'a', kind: 'volume', source: { type: 'blank', size_mib: 'eight' } }),
      400,
      'body.source.size_mib',
    ],
    [
      'create: size too big',
      () => json('POST', '/v1/images', { name: 'a', kind: 'volume', source: { type: 'blank', size_mib: 1e9 } }),
      400,
      'body.source.size_mib',
    ],
    [
      'create: unknown source',
      () => json('POST', '/v1/images', { name: 'a', kind: 'volume', source: { type: 'ftp' } }),
      400,
      'body.source.type',
    ],
    [
      'create: file URL',
      () =>
        json('POST', '/v1/images', { name: 'a', kind: 'rootfs', source: { type: 'url', url: 'file:///etc/passwd' } }),
      400,
      'body.source.url',
    ],
    [
      'create: malformed URL',
      () => json('POST', '/v1/images', { name: 'a', kind: 'rootfs', source: { type: 'url', url: 'http://[::1' } }),
      400,
      'body.source.url',
    ],
    [
      'create: bad sha256',
      () =>
        json('POST', '/v1/images', {
          name: 'a',
          kind: 'rootfs',
          source: { type: 'url', url: 'http://127.0.0.1:9/x', sha256: 'abc' },
        }),
      400,
      'body.source.sha256',
    ],
    [
      'create: blank without size',
      () => json('POST', '/v1/images', { name: 'a', kind: 'volume', source: { type: 'blank' } }),
      400,
      'body.source.size_mib',
    ],
    [
      'create: url without url',
      () => json('POST', '/v1/images', { name: 'a', kind: 'rootfs', source: { type: 'url', path: 'x' } }),
      400,
      'body.source.url',
    ],
    [
      'create: blank with a url',
      () =>
        json('POST', '/v1/images', { name: 'a', kind: 'volume', source: { ...blank, url: 'http://127.0.0.1:9/x' } }),
      400,
      'body.source.url',
    ],
    [
      'create: path while paths are off',
      () => json('POST', '/v1/images', { name: 'a', kind: 'kernel', source: { type: 'path', path: 'k.bin' } }),
      403,
      'body.source.type',
    ],
    [
      'create: blank kernel',
      () => json('POST', '/v1/images', { name: 'a', kind: 'kernel', source: blank }),
      422,
      'body.kind',
    ],
    [
      'create: a version of another kind under a name',
      () => json('POST', '/v1/images', { name: 'existing', kind: 'volume', source: blank }),
      409,
      'body.kind',
    ],
    [
      'create: tag latest',
      () => json('POST', '/v1/images', { name: 'a', tag: 'latest', kind: 'volume', source: blank }),
      400,
      'body.tag',
    ],
    [
      'create: body over 1 MiB',
      () =>
        json('POST', '/v1/images', {
          name: 'a',
          kind: 'volume',
          source: blank,
          description: 'x'.repeat(2 * 1024 * 1024),
        }),
      413,
      'body',
    ],
    [
      'create: invalid JSON',
      () => ({
        method: 'POST',
        url: '/v1/images',
        headers: { 'content-type': 'application/json' },
        payload: '{"name":',
      }),
      400,
      'body',
    ],
    [
      'upload: no name',
      () => ({
        method: 'POST',
        url: '/v1/images/upload?kind=kernel',
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from('x'),
      }),
      400,
      'query.name',
    ],
    [
      'upload: bad kind',
      () => ({
        method: 'POST',
        url: '/v1/images/upload?name=u&kind=x',
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from('x'),
      }),
      400,
      'query.kind',
    ],
    [
      'upload: JSON body',
      () => json('POST', '/v1/images/upload?name=u&kind=kernel', { a: 1 }),
      415,
      'headers.content-type',
    ],
    [
      'upload: text body',
      () => ({
        method: 'POST',
        url: '/v1/images/upload?name=u&kind=kernel',
        headers: { 'content-type': 'text/plain' },
        payload: 'x',
      }),
      415,
      'headers.content-type',
    ],
    [
      'upload: taken name:tag',
      () => ({
        method: 'POST',
        url: '/v1/images/upload?name=existing&kind=kernel&tag=v1',
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from('x'),
      }),
      409,
      'body.tag',
    ],
    ['get: traversal as id', () => json('GET', '/v1/images/..%2F..%2Fetc%2Fpasswd'), 400, 'params.id'],
    ['get: bad id', () => json('GET', '/v1/images/not-a-uuid'), 400, 'params.id'],
    ['get: unknown id', () => json('GET', `/v1/images/${NOPE}`), 404, null],
    ['patch: empty', () => json('PATCH', `/v1/images/${imageId}`, {}), 400, 'body'],
    ['patch: name as number', () => json('PATCH', `/v1/images/${imageId}`, { name: { first: 'a' } }), 400, 'body.name'],
    ['patch: unknown field', () => json('PATCH', `/v1/images/${imageId}`, { kind: 'rootfs' }), 400, 'body.kind'],
    ['patch: unknown id', () => json('PATCH', `/v1/images/${NOPE}`, { name: 'zz' }), 404, null],
    ['delete: bad id', () => json('DELETE', '/v1/images/1'), 400, 'params.id'],
    ['delete: unknown id', () => json('DELETE', `/v1/images/${NOPE}`), 404, null],
    ['rollback: bad id', () => json('POST', '/v1/images/1/rollback'), 400, 'params.id'],
    ['rollback: unknown id', () => json('POST', `/v1/images/${NOPE}/rollback`), 404, null],
    ['content: bad id', () => json('GET', '/v1/images/x/content'), 400, 'params.id'],
    ['content: unknown id', () => json('GET', `/v1/images/${NOPE}/content`), 404, null],
    [
      'content: bad range',
      () => ({ method: 'GET', url: `/v1/images/${imageId}/content`, headers: { range: 'bytes=9-2' } }),
      416,
      'headers.range',
    ],
    ['templates: limit 0', () => json('GET', '/v1/templates?limit=0'), 400, 'query.limit'],
    ['templates: garbage cursor', () => json('GET', '/v1/templates?cursor=%25'), 400, 'query.cursor'],
    ['templates: empty body', () => json('POST', '/v1/templates', {}), 400, 'body.name'],
    ['templates: no spec', () => json('POST', '/v1/templates', { name: 't' }), 400, 'body.spec'],
    [
      'templates: vcpu 0',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: { vcpu: 0, mem_mib: 256, kernel_image_id: NOPE, rootfs_image_id: NOPE },
        }),
      400,
      'body.spec.vcpu',
    ],
    [
      'templates: mem 64',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: { vcpu: 1, mem_mib: 64, kernel_image_id: NOPE, rootfs_image_id: NOPE },
        }),
      400,
      'body.spec.mem_mib',
    ],
    [
      'templates: vmm bogus',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: { vcpu: 1, mem_mib: 256, vmm: 'kvmtool', kernel_image_id: NOPE, rootfs_image_id: NOPE },
        }),
      400,
      'body.spec.vmm',
    ],
    [
      'templates: image id not a uuid',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: { vcpu: 1, mem_mib: 256, kernel_image_id: '../x', rootfs_image_id: NOPE },
        }),
      400,
      'body.spec.kernel_image_id',
    ],
    [
      'templates: boot args too long',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: { vcpu: 1, mem_mib: 256, kernel_image_id: NOPE, rootfs_image_id: NOPE, boot_args: 'a'.repeat(1025) },
        }),
      400,
      'body.spec.boot_args',
    ],
    [
      'templates: 33 tags',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: {
            vcpu: 1,
            mem_mib: 256,
            kernel_image_id: NOPE,
            rootfs_image_id: NOPE,
            tags: Array.from({ length: 33 }, (_, i) => `t${i}`),
          },
        }),
      400,
      'body.spec.tags',
    ],
    [
      'templates: unknown spec field',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: { vcpu: 1, mem_mib: 256, kernel_image_id: NOPE, rootfs_image_id: NOPE, gpu: 1 },
        }),
      400,
      'body.spec.gpu',
    ],
    [
      'templates: bad MAC',
      () =>
        json('POST', '/v1/templates', {
          name: 't',
          spec: { vcpu: 1, mem_mib: 256, kernel_image_id: NOPE, rootfs_image_id: NOPE, nics: [{ mac: 'zz' }] },
        }),
      400,
      'body.spec.nics.0.mac',
    ],
    ['templates: get bad id', () => json('GET', '/v1/templates/abc'), 400, 'params.id'],
    ['templates: get unknown', () => json('GET', `/v1/templates/${NOPE}`), 404, null],
    [
      'templates: put unknown',
      () =>
        json('PUT', `/v1/templates/${NOPE}`, {
          name: 't',
          spec: { vcpu: 1, mem_mib: 256, kernel_image_id: NOPE, rootfs_image_id: NOPE },
        }),
      404,
      null,
    ],
    ['templates: put bad body', () => json('PUT', `/v1/templates/${NOPE}`, { name: 't' }), 400, 'body.spec'],
    ['templates: delete unknown', () => json('DELETE', `/v1/templates/${NOPE}`), 404, null],
  ];

  it.each(cases)('%s → 4xx problem+json naming the field', async (_, opts, status, field) => {
    const res = await t.request(opts());
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    const body = res.json();
    expect(body.request_id).toBeTruthy();
    if (field) expect(body.field).toBe(field);
  });

  it('leaves nothing half-written after the bad requests', async () => {
    const list = await t.request({ method: 'GET', url: '/v1/images' });
    expect(list.json().items.map((i: { name: string }) => i.name)).toEqual(['existing']);
    expect((await t.request({ method: 'GET', url: '/v1/templates' })).json().items).toEqual([]);
  });

  it('never lets a name or description reach a command line: injection payloads are refused or inert', async () => {
    for (const p of PAYLOADS) {
      const res = await t.request(json('POST', '/v1/images', { name: p, kind: 'volume', source: blank }));
      expect(res.statusCode, p).toBe(400);
      const up = await t.request({
        method: 'POST',
        url: `/v1/images/upload?name=${encodeURIComponent(p)}&kind=kernel`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from('x'),
      });
      expect(up.statusCode, p).toBe(400);
    }
    const inert = await t.request(
      json('POST', '/v1/images', { name: 'inert', kind: 'volume', description: PAYLOADS.join(' '), source: blank }),
    );
    expect(inert.statusCode).toBe(201);
    expect(inert.json().description).toBe(PAYLOADS.join(' '));
    expect(existsSync(MARK)).toBe(false);
  });
});
