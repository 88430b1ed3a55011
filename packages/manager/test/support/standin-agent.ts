import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import type { TestApp } from './harness.ts';

/** A boot call the stand-in agent got; the test decides when it answers. */
export interface BootCall {
  id: string;
  /** The JSON body of the boot call: the agent VM spec the manager built. */
  spec: Record<string, unknown>;
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
 * `/agent/v1/vms/{id}/boot` to `onBoot`, answers a stop as done at once, and 404 to everything else.
 */
export async function startStandinHost(t: TestApp, onBoot: (boot: BootCall) => void): Promise<StandinHost> {
  const calls: string[] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    calls.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const stop = /^\/agent\/v1\/vms\/([0-9a-f-]{36})\/stop$/.exec(req.url ?? '')?.[1];
    if (stop && req.method === 'POST')
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ id: stop, state: 'stopped', pid: null, booted_at: null }));
    const m = /^\/agent\/v1\/vms\/([0-9a-f-]{36})\/boot$/.exec(req.url ?? '');
    const id = m?.[1];
    if (!id) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"not_found"}');
    onBoot({
      id,
      spec: chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {},
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
    payload: {
      join_token: await t.joinToken(),
      name: 'h1',
      addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    },
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
