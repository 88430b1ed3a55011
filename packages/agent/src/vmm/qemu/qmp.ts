import { createConnection, type Socket } from 'node:net';
import { QmpCommandError, QmpUnavailable } from './errors.js';
import { closeFd, connectFdSocket, writeWithFd } from './fd-passing.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  QMP: { version: { qemu: { major: number; minor: number; micro: number }; package?: string }; capabilities: string[] };
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface QmpConnectOptions {
  timeoutMs?: number;
  /** Connect so that `passFd` works (descriptors travel with SCM_RIGHTS). */
  fds?: boolean;
}

/**
 * A QMP client on a unix socket: greeting, `qmp_capabilities`, then commands tagged with ids so replies
 * match even with events interleaved. QEMU serves one QMP client at a time, so hold it briefly.
 */
export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(ev: QmpEvent) => void>();
  private closedError: Error | null = null;
  readonly closed: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    readonly greeting: QmpGreeting,
    initialBuffer: string,
  ) {
    this.buffer = initialBuffer;
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.failAll(new QmpUnavailable('QMP connection closed'));
        resolve();
      });
    });
    socket.on('error', (e) => this.failAll(new QmpUnavailable(`QMP socket error: ${e.message}`)));
    socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      this.drain();
    });
    this.drain();
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(socketPath: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const connected = opts.fds
      ? await connectFdSocket(socketPath).catch((e: Error) => e)
      : createConnection(socketPath);
    if (connected instanceof Error)
      throw new QmpUnavailable(`cannot connect to QMP at ${socketPath}: ${connected.message}`);
    const socket = connected;
    const { greeting, rest } = await new Promise<{ greeting: QmpGreeting; rest: string }>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new QmpUnavailable(`no QMP greeting on ${socketPath} within ${timeoutMs} ms`));
      }, timeoutMs);
      const fail = (e: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new QmpUnavailable(`cannot connect to QMP at ${socketPath}: ${e.message}`));
      };
      const onData = (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', fail);
        try {
          const greeting = JSON.parse(buf.slice(0, nl)) as QmpGreeting;
          if (!greeting.QMP) throw new Error('not a QMP greeting');
          resolve({ greeting, rest: buf.slice(nl + 1) });
        } catch (e) {
          fail(e as Error);
        }
      };
      socket.on('data', onData);
      socket.on('error', fail);
      socket.on('close', () => fail(new Error('closed before greeting')));
    });
    socket.removeAllListeners('close');
    const client = new QmpClient(socket, greeting, rest);
    try {
      await client.execute('qmp_capabilities', undefined, { timeoutMs });
    } catch (e) {
      client.destroy();
      throw e;
    }
    return client;
  }

  /** Sends a command and resolves with its `return` value; QMP errors reject with QmpCommandError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = `nqvm-${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpUnavailable(`QMP ${command} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /**
   * Hands QEMU a descriptor under `name` (QMP `getfd`), for `fd:NAME` migration URIs on this connection. The
   * descriptor is taken over and closed here once QEMU has its own copy. Needs a connection made with `fds`.
   */
  async passFd(name: string, fd: number, opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closedError) {
      closeFd(fd);
      throw this.closedError;
    }
    const id = `nqvm-${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpUnavailable(`QMP getfd got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command: 'getfd', resolve, reject, timer });
    });
    let sent: { release(): void };
    try {
      sent = writeWithFd(this.socket, `${JSON.stringify({ execute: 'getfd', arguments: { fdname: name }, id })}\n`, fd);
    } catch (e) {
      const p = this.pending.get(id);
      if (p) clearTimeout(p.timer);
      this.pending.delete(id);
      throw e;
    }
    try {
      await reply;
    } finally {
      sent.release();
    }
  }

  /** Subscribes to asynchronous events (STOP, RESUME, SHUTDOWN, POWERDOWN, ...); returns an unsubscribe. */
  onEvent(listener: (ev: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the next event of that name. */
  waitForEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new QmpUnavailable(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onEvent((ev) => {
        if (ev.event !== name) return;
        clearTimeout(timer);
        off();
        resolve(ev);
      });
    });
  }

  /** Ends the connection and waits for the socket to close. */
  async close(): Promise<void> {
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    await this.closed;
    clearTimeout(timer);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private drain(): void {
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.dispatch(line);
    }
  }

  private dispatch(line: string): void {
    let msg: { id?: unknown; return?: unknown; error?: { class?: string; desc?: string }; event?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof msg.event === 'string') {
      for (const l of [...this.listeners]) l(msg as QmpEvent);
      return;
    }
    if (typeof msg.id !== 'string') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new QmpCommandError(p.command, msg.error.class ?? 'GenericError', msg.error.desc ?? ''));
    else p.resolve(msg.return);
  }

  private failAll(err: Error): void {
    this.closedError ??= err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }
}

/** Runs `fn` on a fresh QMP connection and closes it afterwards, whatever happens. */
export async function withQmp<T>(
  socketPath: string,
  fn: (qmp: QmpClient) => Promise<T>,
  opts?: QmpConnectOptions,
): Promise<T> {
  const qmp = await QmpClient.connect(socketPath, opts);
  try {
    return await fn(qmp);
  } finally {
    await qmp.close();
  }
}
