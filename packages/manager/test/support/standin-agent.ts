import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { JOIN_TOKEN, type TestApp } from './harness.ts';

/** A boot call the stand-in agent got; the test decides when it answers. */
export interface BootCall {
  id: string;
  /** Answers that the VM is running with this pid. */
  answer(pid: number): void;
}

export interface StandinHost {
  id: string;
  secret: string;
  /** Every request the stand-in agent got, as `METHOD url`. */
  calls: string[];
  /** One heartbeat for this host (4 vCPUs, 4 GiB, qemu without KVM) reporting `vms`. */
  heartbeat(vms: unknown[]): Promise<LightMyRequestResponse>;
  /** Stops the stand-in agent, dropping any boot call still unanswered. */
  close(): Promise<void>;
}

/**
 * A small HTTP stand-in for a host agent, registered with `t`'s manager: it hands each
 * `/agent/v1/vms/{id}/boot` to `onBoot` and answers 404 to everything else.
 */
export async function startStandinHost(t: TestApp, onBoot: (boot: BootCall) => void): Promise<StandinHost> {
  const calls: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    calls.push(`${req.method} ${req.url}`);
    const m = /^\/agent\/v1\/vms\/([0-9a-f-]{36})\/boot$/.exec(req.url ?? '');
    const id = m?.[1];
    if (!id) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"not_found"}');
    onBoot({
      id,
      answer: (pid) =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id, state: 'running', pid, booted_at: new Date().toISOString() })),
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  const reg = await t.app.inject({
    method: 'POST',
    url: '/v1/hosts/register',
    payload: { join_token: JOIN_TOKEN, name: 'h1', addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}` },
  });
  if (reg.statusCode >= 300) {
    await close();
    throw new Error(`host registration failed: ${reg.statusCode} ${reg.body}`);
  }
  const { id, secret } = reg.json() as { id: string; secret: string };
  return {
    id,
    secret,
    calls,
    heartbeat: (vms) =>
      t.app.inject({
        method: 'POST',
        url: `/v1/hosts/${id}/heartbeat`,
        headers: { authorization: `Bearer ${secret}` },
        payload: {
          capacity: { cpus: 4, memory_mib: 4096, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
          capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
          vms,
        },
      }),
    close,
  };
}

/** Uploads a kernel, initrd and rootfs of placeholder bytes (a stand-in agent never reads them); returns their ids. */
export async function uploadStubImages(t: TestApp): Promise<Record<'kernel' | 'initrd' | 'rootfs', string>> {
  const ids = { kernel: '', initrd: '', rootfs: '' };
  for (const k of ['kernel', 'initrd', 'rootfs'] as const) {
    const res = await t.request({
      method: 'POST',
      url: `/v1/images/upload?name=${k}-img&kind=${k}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from(`${k} bytes`),
    });
    ids[k] = res.json().id;
  }
  return ids;
}
