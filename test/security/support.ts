import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { DEFAULT_PROJECT_ID } from '../../packages/manager/src/db/schema.ts';
import { type DbKind, startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';
import {
  type BootCall,
  type StandinHost,
  startStandinHost,
  uploadStubImages,
} from '../../packages/manager/test/support/standin-agent.ts';

/** A manager (PGlite) with a stand-in host and two running VMs: every kind of credential an attacker may hold. */
export interface Target {
  t: TestApp;
  host: StandinHost;
  images: Record<'kernel' | 'initrd' | 'rootfs', string>;
  vms: { id: string; guestToken: string }[];
  close(): Promise<void>;
}

/** The first `nqg_` string anywhere in a boot spec: the VM's guest token. */
function guestTokenIn(value: unknown): string | undefined {
  if (typeof value === 'string') return value.startsWith('nqg_') ? value : undefined;
  if (value && typeof value === 'object')
    for (const v of Object.values(value)) {
      const hit = guestTokenIn(v);
      if (hit) return hit;
    }
  return undefined;
}

export async function startTarget(env: Record<string, string> = {}, kind: DbKind = 'pglite'): Promise<Target> {
  const t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true', ...env });
  const boots: BootCall[] = [];
  const host = await startStandinHost(t, (boot) => {
    boots.push(boot);
    boot.answer(1000 + boots.length);
  });
  expect((await host.heartbeat([])).statusCode).toBe(200);
  const images = await uploadStubImages(t);
  const vms: Target['vms'] = [];
  for (const name of ['victim', 'attacker']) {
    const res = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name,
        vcpu: 1,
        mem_mib: 128,
        kernel_image_id: images.kernel,
        initrd_image_id: images.initrd,
        rootfs_image_id: images.rootfs,
      },
    });
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().id as string;
    const deadline = Date.now() + 20_000;
    while (!boots.some((b) => b.id === id)) {
      if (Date.now() > deadline) throw new Error(`no boot call for ${name}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const token = guestTokenIn(boots.find((b) => b.id === id)?.spec);
    if (!token) throw new Error(`no guest token in the boot spec of ${name}`);
    vms.push({ id, guestToken: token });
  }
  return {
    t,
    host,
    images,
    vms,
    async close() {
      await host.close();
      await t.close();
    },
  };
}

/** A 4xx must be problem+json with a stable code and the request id; anything 5xx fails the test. */
export function expectProblem(res: LightMyRequestResponse, what: string): void {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  if (res.statusCode < 400) return;
  expect(res.headers['content-type'], `${what}: content-type`).toMatch(/^application\/problem\+json/);
  const body = res.json() as { code?: unknown; status?: unknown; request_id?: unknown };
  expect(typeof body.code, `${what}: code`).toBe('string');
  expect(body.status, `${what}: status`).toBe(res.statusCode);
  expect(typeof body.request_id, `${what}: request_id`).toBe('string');
}

/** A route's URL with real ids, so that only the credential stands between the caller and the resource. */
export function urlOf(target: Target, def: { path: string }): string {
  const byPrefix: [RegExp, string][] = [
    [/^\/v1\/hosts\//, target.host.id],
    [/^\/v1\/images\//, target.images.rootfs],
    [/^\/v1\/vms\//, target.vms[0]!.id],
    [/^\/v1\/projects\//, DEFAULT_PROJECT_ID],
  ];
  const id = byPrefix.find(([re]) => re.test(def.path))?.[1] ?? '00000000-0000-4000-8000-000000000000';
  return def.path
    .replace(':id', id)
    .replace(':drive_id', 'rootfs')
    .replace(':nic_id', 'eth0')
    .replace(':user_id', '00000000-0000-4000-8000-000000000000')
    .concat(def.path === '/v1/images/upload' ? '?name=x&kind=rootfs' : '');
}
