import websocket from '@fastify/websocket';
import { agentApi, type ConsoleControl, writeProblem } from '@nqvm/api';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import type { ConsoleHubs } from './console-hub.ts';

export interface ConsoleRoutesDeps {
  hubs: ConsoleHubs;
  /** The agent's host-secret check; runs before the upgrade, so a refused caller gets a plain 401. */
  authorize: onRequestHookHandler;
  /** Whether this host has the VM; unknown ids get a 404 before the upgrade. */
  exists(vmId: string): boolean | Promise<boolean>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// A viewer this far behind is dropped rather than buffered without bound.
const MAX_BUFFERED = 4 * 1024 * 1024;

/** Parses a text frame from a viewer: only a well-formed resize is accepted. */
export function parseConsoleControl(text: string): Extract<ConsoleControl, { type: 'resize' }> | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as Record<string, unknown>;
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 1000;
  if (m.type !== 'resize' || !ok(m.cols) || !ok(m.rows)) return undefined;
  return { type: 'resize', cols: m.cols as number, rows: m.rows as number };
}

/**
 * `GET /agent/v1/vms/:id/console/ws`: binary frames are terminal bytes both ways; text frames are JSON control
 * (`hello`, `status` from the agent; `resize` from the viewer). Register with `app.register(consoleRoutes, deps)`.
 */
export async function consoleRoutes(app: FastifyInstance, deps: ConsoleRoutesDeps): Promise<void> {
  if (!app.hasDecorator('websocketServer')) await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  const def = agentApi.observe.consoleWs;
  app.get<{ Params: { id: string } }>(
    def.path,
    {
      websocket: true,
      schema: { params: def.params },
      onRequest: deps.authorize,
      preHandler: async (req, reply) => {
        const id = req.params.id;
        const requestId = String(req.id);
        if (!UUID.test(id))
          return writeProblem(reply, { status: 400, code: 'invalid_vm_id', detail: 'not a VM id', requestId });
        if (!(await deps.exists(id)))
          return writeProblem(reply, { status: 404, code: 'vm_not_found', detail: `vm ${id} not found`, requestId });
      },
    },
    async (socket, req) => {
      const send = (data: Buffer | string) => {
        if (socket.readyState !== socket.OPEN) return;
        if (socket.bufferedAmount > MAX_BUFFERED) return socket.close(1013, 'viewer too slow');
        socket.send(data);
      };
      // Frames that arrive while the hub is seeding are kept and replayed in order.
      const early: Array<[Buffer, boolean]> = [];
      let session: Awaited<ReturnType<ConsoleHubs['attach']>> | undefined;
      let gone = false;
      const onFrame = (data: Buffer, binary: boolean) => {
        if (!session) return void early.push([data, binary]);
        if (binary) return session.input(data);
        const ctl = parseConsoleControl(data.toString('utf8'));
        if (ctl) session.resize(ctl.cols, ctl.rows);
        else send(JSON.stringify({ type: 'error', message: 'text frames must be JSON control messages' }));
      };
      socket.on('message', (data: Buffer, binary: boolean) => onFrame(data, binary));
      socket.on('close', () => {
        gone = true;
        session?.detach();
      });
      session = await deps.hubs.attach(req.params.id, {
        output: (data) => send(data),
        control: (msg) => send(JSON.stringify(msg)),
      });
      if (gone) return session.detach();
      for (const [d, b] of early.splice(0)) onFrame(d, b);
    },
  );
}
