import { api, type Event } from '@nqvm/api';
import WebSocket from 'ws';
import type { CliConfig } from './config.ts';
import { UsageError } from './flags.ts';
import type { OutputMode } from './output.ts';
import { table } from './output.ts';
import { clientFor, type Io } from './run.ts';

/** The terminal the CLI runs in, passed in so tests can drive it through a pseudo-terminal or fakes. */
export interface Tty {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** Ctrl-] ends a console session, as in telnet and virsh. */
export const DETACH = 0x1d;

/** Reads a password: typed without echo on a terminal, else the whole of stdin. */
export async function readPassword(io: Io, tty?: Tty, prompt = 'Password: '): Promise<string> {
  if (!tty?.stdin.isTTY) return (await io.readStdin()).trim();
  tty.stderr.write(prompt);
  const stdin = tty.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            tty.stderr.write('\n');
            return resolve(typed);
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            tty.stderr.write('\n');
            return reject(new UsageError('cancelled'));
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

const wsUrl = (cfg: CliConfig, path: string) => `${cfg.url.replace(/^http/, 'ws').replace(/\/$/, '')}${path}`;

function openSocket(cfg: CliConfig, path: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(cfg, path), {
      headers: cfg.token ? { authorization: `Bearer ${cfg.token}` } : {},
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (b: Buffer) => {
        text += b.toString();
      });
      res.on('end', () => {
        let detail = text;
        try {
          detail = (JSON.parse(text) as { detail?: string }).detail ?? text;
        } catch {}
        reject(new ConsoleRefused(res.statusCode ?? 0, detail || `upgrade refused (${res.statusCode})`));
      });
    });
    ws.once('error', reject);
  });
}

export class ConsoleRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The VM's serial console on this terminal: raw mode, the terminal size sent on connect and on every resize,
 * Ctrl-] detaches. Resolves with why it ended.
 */
export async function attachConsole(cfg: CliConfig, vmId: string, tty: Tty): Promise<string> {
  const ws = await openSocket(cfg, `/v1/vms/${vmId}/shell/ws`);
  const { stdin, stdout, stderr } = tty;
  stderr.write(`Connected to the console of ${vmId}. Detach with Ctrl-].\r\n`);
  const sendSize = () => {
    if (stdout.columns && stdout.rows)
      ws.send(JSON.stringify({ type: 'resize', cols: stdout.columns, rows: stdout.rows }));
  };
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve) => {
    let reason = 'closed by the manager';
    const onInput = (chunk: Buffer) => {
      const at = chunk.indexOf(DETACH);
      if (at >= 0) {
        if (at > 0) ws.send(chunk.subarray(0, at));
        reason = 'detached';
        ws.close(1000, 'detached');
        return;
      }
      ws.send(chunk);
    };
    const finish = () => {
      stdin.off('data', onInput);
      stdout.off('resize', sendSize);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      stderr.write(`\r\n[console ${reason}]\r\n`);
      resolve(reason);
    };
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        stdout.write(data as Buffer);
        return;
      }
      const msg = JSON.parse(data.toString()) as { type?: string; state?: string; reason?: string };
      if (msg.type === 'hello') sendSize();
      if (msg.type === 'status' && msg.state && msg.state !== 'running')
        stderr.write(`\r\n[vm ${msg.state}${msg.reason ? `: ${msg.reason}` : ''}]\r\n`);
    });
    ws.on('close', (code, why) => {
      if (reason !== 'detached' && why.length) reason = `closed: ${why.toString()} (${code})`;
      finish();
    });
    stdin.on('data', onInput);
    stdout.on('resize', sendSize);
  });
}

function eventLine(e: Event): Record<string, unknown> {
  return { id: e.id, at: e.at, actor: e.actor, resource_type: e.resource_type, action: e.action, result: e.result };
}

/** Recent events, then (with follow) every new one as it happens, until the connection ends or the signal aborts. */
export async function events(
  cfg: CliConfig,
  io: Io,
  opts: { follow: boolean; mode: OutputMode; limit?: number; signal?: AbortSignal },
): Promise<void> {
  const page = await clientFor(cfg).call(api.events.list, { query: { limit: opts.limit ?? 20 } });
  const recent = [...page.items].reverse();
  const print = (list: Event[], header: boolean) => {
    if (!list.length) return;
    if (opts.mode === 'json') for (const e of list) io.out(JSON.stringify(e));
    else if (opts.mode === 'quiet') for (const e of list) io.out(e.id);
    else {
      const text = table(list.map(eventLine), ['id', 'at', 'actor', 'resource_type', 'action', 'result']);
      io.out(header ? text : text.split('\n').slice(1).join('\n'));
    }
  };
  print(recent, true);
  if (!opts.follow) return;
  const after = recent[recent.length - 1]?.id;
  const ws = await openSocket(cfg, `/v1/events/ws${after ? `?after=${after}` : ''}`);
  await new Promise<void>((resolve) => {
    opts.signal?.addEventListener('abort', () => ws.close(1000));
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as { type: string; event?: Event };
      if (msg.type === 'event' && msg.event) print([msg.event], recent.length === 0 && opts.mode === 'table');
    });
    ws.on('close', () => resolve());
  });
}
