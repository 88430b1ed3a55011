import { PassThrough } from 'node:stream';
import { agentApi } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mountRoute } from '../mount.ts';
import { AgentError } from '../vms/errors.ts';
import { vmFiles } from '../vms/layout.ts';
import { follow, tailLines } from './tail.ts';

/** A VM's console or VMM log by name (never a path): the last lines, then new ones while the caller stays. */
export function logsRoutes(api: FastifyInstance, dataDir: string): void {
  mountRoute(api, agentApi.observe.logs, async (req, reply) => {
    const f = vmFiles(dataDir, req.params.id);
    const path = req.query.kind === 'console' ? f.consoleLog : f.vmmLog;
    const head = await tailLines(path, req.query.lines ?? 100).catch(() => {
      throw new AgentError(404, 'log_not_found', `VM ${req.params.id} has no ${req.query.kind} log on this host`);
    });
    reply.type('text/plain; charset=utf-8');
    if (!req.query.follow) return reply.send(head.text);
    const out = new PassThrough();
    const ac = new AbortController();
    req.raw.once('close', () => ac.abort());
    out.write(head.text);
    void (async () => {
      for await (const chunk of follow(path, head.end, ac.signal))
        if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      out.end();
    })().catch(() => out.end());
    return reply.send(out);
  });
}
