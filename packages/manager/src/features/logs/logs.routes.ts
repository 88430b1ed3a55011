import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { agentApi, api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { BadRequest, DomainError } from '../../domain/errors.ts';
import { mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import type { AgentClient } from '../vms/agent-client.ts';
import type { VmsService } from '../vms/vms.service.ts';

/** Known logs by name only: a VM's console or VMM log, fetched from (and followed on) its host agent. */
export function logsRoutes(app: FastifyInstance, authn: Authenticator, vms: VmsService, agent: AgentClient): void {
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
    const ac = new AbortController();
    req.raw.once('close', () => ac.abort());
    const stream = await agent.stream(await vms.agentTarget(vm.hostId), agentApi.observe.logs, {
      params: { id: vm.id },
      query: {
        kind: query.source === 'vm-console' ? 'console' : 'vmm',
        lines: query.lines ?? 100,
        follow: query.follow ?? false,
      },
      signal: ac.signal,
    });
    reply.type('text/plain; charset=utf-8');
    const body = Readable.fromWeb(stream as ReadableStream);
    body.on('error', () => undefined);
    return reply.send(body);
  });
}
