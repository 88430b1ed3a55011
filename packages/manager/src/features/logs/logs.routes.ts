import { Readable } from 'node:stream';
import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { BadRequest, DomainError } from '../../domain/errors.ts';
import { mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import type { VmsService } from '../vms/vms.service.ts';

/** Known logs by name only: a VM's console or VMM log, fetched from (and followed on) its host agent. */
export function logsRoutes(app: FastifyInstance, authn: Authenticator, vms: VmsService): void {
  mount(app, authn, api.logs.tail, async ({ query, req, reply }) => {
    if (query.source === 'manager' || query.source === 'agent')
      throw new DomainError(
        422,
        'log_unavailable',
        `the ${query.source} logs to its standard output (journald under systemd); no log file is kept to tail`,
        'query.source',
      );
    if (!query.vm_id) throw new BadRequest('vm_id_required', `source ${query.source} needs vm_id`, 'query.vm_id');
    const vm = await vms.row(query.vm_id);
    if (!vm.hostId) throw new DomainError(404, 'log_not_found', 'the VM has never run on a host');
    const t = await vms.agentTarget(vm.hostId);
    const ac = new AbortController();
    req.raw.once('close', () => ac.abort());
    const qs = new URLSearchParams({
      kind: query.source === 'vm-console' ? 'console' : 'vmm',
      lines: String(query.lines ?? 100),
      follow: String(query.follow ?? false),
    });
    const res = await fetch(`${t.addr}/agent/v1/vms/${vm.id}/logs?${qs}`, {
      headers: { authorization: `Bearer ${t.secret}` },
      signal: ac.signal,
    }).catch((err: unknown) => {
      throw new DomainError(502, 'host_error', `host agent unreachable: ${String(err)}`);
    });
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      throw new DomainError(res.status === 404 ? 404 : 502, res.status === 404 ? 'log_not_found' : 'host_error', text);
    }
    reply.type('text/plain; charset=utf-8');
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    body.on('error', () => undefined);
    return reply.send(body);
  });
}
