import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { AgentError } from '../vms/errors.ts';
import { vmFiles } from '../vms/layout.ts';
import { follow, tailLines } from './tail.ts';

const Params = Type.Object({ id: Type.String({ maxLength: 64 }) });
const Query = Type.Object({
  kind: Type.Union([Type.Literal('console'), Type.Literal('vmm')]),
  lines: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 100 })),
  follow: Type.Optional(Type.Boolean({ default: false })),
});

/** A VM's console or VMM log by name (never a path): the last lines, then new ones while the caller stays. */
export function logsRoutes(api: FastifyInstance, dataDir: string): void {
  api.get<{ Params: { id: string }; Querystring: { kind: 'console' | 'vmm'; lines?: number; follow?: boolean } }>(
    '/agent/v1/vms/:id/logs',
    { schema: { params: Params, querystring: Query } },
    async (req, reply) => {
      const f = vmFiles(dataDir, req.params.id);
      const path = req.query.kind === 'console' ? f.consoleLog : f.vmmLog;
      const head = await tailLines(path, req.query.lines ?? 100).catch(() => {
        throw new AgentError(404, 'log_not_found', `VM ${req.params.id} has no ${req.query.kind} log on this host`);
      });
      reply.type('text/plain; charset=utf-8');
      if (!req.query.follow) return head.text;
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
    },
  );
}
