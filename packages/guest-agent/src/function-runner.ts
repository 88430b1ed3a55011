import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { NODE_BOOTSTRAP, PYTHON_BOOTSTRAP } from './function-bootstrap';
import type { InvokeRequest, LoadRequest } from './function-request';

/** What `/function/invoke` answers (FunctionInvokeResult in `@nqvm/api`). */
export interface InvokeResult {
  status: 'succeeded' | 'failed' | 'timed_out';
  value?: unknown;
  error?: {
    type: string;
    message: string;
    stack: string;
    reason?: 'exception' | 'out_of_memory' | 'output_too_large' | 'killed';
  };
  stdout: string;
  stderr: string;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  duration_ms: number;
}

export type HandlerError = NonNullable<InvokeResult['error']>;

/** A refusal the server answers as problem+json with this status and catalogued code. */
export class RunnerRefused extends Error {
  constructor(
    readonly status: 409 | 422,
    readonly code: 'function_not_loaded' | 'runner_busy' | 'function_load_failed',
    message: string,
    readonly error?: HandlerError,
  ) {
    super(message);
  }
}

export interface FunctionRunnerOptions {
  /** Where the code is written (emptied at every load). */
  workDir: string;
  /** argv before the bootstrap's own arguments: e.g. the guest tools' loader + node, or `python3 -u`. */
  commands: { node20: string[]; python3: string[] };
  /** Total guest memory (bytes): the runtime's memory limit is set from it. */
  memTotalBytes(): Promise<number>;
  /** The kernel's count of OOM kills (`oom_kill` of /proc/vmstat), to tell an OOM kill from another. */
  oomKills?: () => Promise<number>;
  /** Run handlers as this uid/gid (the guest agent runs as root; handlers do not need to). */
  user?: { uid: number; gid: number };
  /** How long to wait for the handler to import its code. */
  loadTimeoutMs?: number;
}

interface Loaded {
  child: ChildProcess;
  /** Messages (JSON lines) from fd 4 not yet taken. */
  messages: Message[];
  waiters: ((m: Message | undefined) => void)[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  out: Capture;
  err: Capture;
  killedByUs: boolean;
  oomBefore: number;
  /** A result line longer than this ends the process (the value exceeds the output limit). */
  maxMessage: number;
}

type Message =
  | { kind: 'ready' }
  | { kind: 'load_failed'; error: HandlerError }
  | { kind: 'result'; ok: boolean; value?: unknown; error?: HandlerError; reason?: 'out_of_memory' }
  | { kind: 'too_large'; bytes: number };

/** Keeps the first `limit` bytes of a stream and counts the rest. */
class Capture {
  private parts: Buffer[] = [];
  private size = 0;
  truncated = false;
  limit = 64 * 1024;
  add(b: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      if (b.length) this.truncated = true;
      return;
    }
    if (b.length > room) this.truncated = true;
    const kept = b.length > room ? b.subarray(0, room) : b;
    this.parts.push(kept);
    this.size += kept.length;
  }
  text(): string {
    return Buffer.concat(this.parts).toString('utf8');
  }
  /** Output before the event (imports printing) is dropped: an invocation reports its own output. */
  reset(limit: number): void {
    this.parts = [];
    this.size = 0;
    this.truncated = false;
    this.limit = limit;
  }
}

const HEAP_OOM = /JavaScript heap out of memory|Reached heap limit/;
/** The handler's share of the VM's memory: the guest agent and the kernel keep the rest. */
const MEMORY_SHARE = 0.75;

/**
 * One function per runtime VM: `load` writes its files and starts the handler process (code imported, waiting for
 * the event); `invoke` sends the event, enforces the timeout and output cap, and ends the process.
 */
export class FunctionRunner {
  private loaded: Loaded | undefined;
  private busy = false;

  constructor(private readonly o: FunctionRunnerOptions) {}

  async load(req: LoadRequest): Promise<{ loaded: true; load_ms: number }> {
    if (this.busy) throw new RunnerRefused(409, 'runner_busy', 'a load or an invocation is under way');
    this.busy = true;
    const started = performance.now();
    try {
      this.discard();
      const dir = path.join(this.o.workDir, 'code');
      await rm(this.o.workDir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true, mode: 0o755 });
      for (const [rel, content] of Object.entries(req.files)) {
        const target = path.join(dir, rel);
        // The paths were checked (relative, no . or ..); this is the second lock on the door.
        if (!target.startsWith(`${dir}/`)) throw new Error(`path ${rel} leaves the code directory`);
        await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
        await writeFile(target, content, { mode: 0o644 });
      }
      const bootstrap = path.join(this.o.workDir, req.runtime === 'node20' ? 'bootstrap.cjs' : 'bootstrap.py');
      await writeFile(bootstrap, req.runtime === 'node20' ? NODE_BOOTSTRAP : PYTHON_BOOTSTRAP, { mode: 0o644 });
      const memMib = Math.floor((await this.o.memTotalBytes()) / 1024 / 1024);
      const limitMib = Math.max(32, Math.floor(memMib * MEMORY_SHARE));
      const [cmd, ...pre] = this.o.commands[req.runtime];
      if (!cmd) throw new Error(`no command for ${req.runtime}`);
      const args =
        req.runtime === 'node20'
          ? [...pre, `--max-old-space-size=${limitMib}`, bootstrap, dir, req.file, req.name]
          : [...pre, bootstrap, dir, req.file, req.name, String(limitMib * 1024 * 1024)];
      const child = spawn(cmd, args, {
        cwd: dir,
        env: {
          PATH: '/usr/local/bin:/usr/bin:/bin',
          HOME: this.o.workDir,
          LANG: 'C.UTF-8',
          ...req.env,
        },
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
        detached: true,
        ...(this.o.user ?? {}),
      });
      const l = this.track(child, await this.oomKills());
      this.loaded = l;
      await writeFile(`/proc/${child.pid}/oom_score_adj`, '1000').catch(() => undefined);
      const timer = setTimeout(() => this.kill(l), this.o.loadTimeoutMs ?? 50_000);
      const first = await this.next(l).finally(() => clearTimeout(timer));
      if (first?.kind === 'ready') return { loaded: true, load_ms: Math.round(performance.now() - started) };
      this.discard();
      const error =
        first?.kind === 'load_failed'
          ? first.error
          : {
              type: 'LoadError',
              message: `the handler process ended while loading: ${l.err.text().slice(-2000)}`,
              stack: '',
            };
      throw new RunnerRefused(422, 'function_load_failed', `${error.type}: ${error.message}`, error);
    } finally {
      this.busy = false;
    }
  }

  async invoke(req: InvokeRequest): Promise<InvokeResult> {
    const l = this.loaded;
    if (!l) throw new RunnerRefused(409, 'function_not_loaded', 'no function is loaded (or it already ran)');
    if (this.busy) throw new RunnerRefused(409, 'runner_busy', 'a load or an invocation is under way');
    this.busy = true;
    this.loaded = undefined;
    try {
      return await this.run(l, req);
    } finally {
      this.kill(l);
      this.busy = false;
    }
  }

  private async run(l: Loaded, req: InvokeRequest): Promise<InvokeResult> {
    l.out.reset(req.outputLimitBytes);
    l.err.reset(req.outputLimitBytes);
    l.maxMessage = req.outputLimitBytes + 1024;
    const started = performance.now();
    const input = l.child.stdio[3] as Writable;
    input.on('error', () => undefined);
    input.end(`{"timeout_ms":${req.timeoutMs},"event":${req.eventJson}}`);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.kill(l);
    }, req.timeoutMs);
    const msg = await this.next(l);
    clearTimeout(timer);
    const duration = Math.round(performance.now() - started);
    // Let the process flush and end on its own (its output pipes close), then it is killed whatever it does.
    const grace = setTimeout(() => this.kill(l), 1000);
    const exit = await l.exited;
    clearTimeout(grace);
    const base = {
      stdout: l.out.text(),
      stderr: l.err.text(),
      stdout_truncated: l.out.truncated,
      stderr_truncated: l.err.truncated,
      duration_ms: duration,
    };
    if (msg?.kind === 'result') {
      if (msg.ok) return { status: 'succeeded', value: msg.value ?? null, ...base };
      const error = msg.error ?? { type: 'Error', message: 'the handler failed', stack: '' };
      return { status: 'failed', error: { ...error, reason: msg.reason ?? 'exception' }, ...base };
    }
    if (msg?.kind === 'too_large')
      return {
        status: 'failed',
        error: {
          type: 'OutputTooLarge',
          message: `the handler's value is larger than output_limit_bytes (${req.outputLimitBytes})`,
          stack: '',
          reason: 'output_too_large',
        },
        ...base,
      };
    if (timedOut)
      return {
        status: 'timed_out',
        error: { type: 'TimeoutError', message: `the handler did not return within ${req.timeoutMs} ms`, stack: '' },
        ...base,
      };
    const oom = HEAP_OOM.test(base.stderr) || (!l.killedByUs && (await this.oomKills()) > l.oomBefore);
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    return {
      status: 'failed',
      error: oom
        ? {
            type: 'OutOfMemory',
            message: `the handler ran out of memory and ${how}`,
            stack: '',
            reason: 'out_of_memory',
          }
        : {
            type: 'ProcessExited',
            message: `the handler process ${how} without an answer`,
            stack: '',
            reason: 'killed',
          },
      ...base,
    };
  }

  /** Wires the child's pipes: stdout/stderr into captures, fd 4 into JSON-line messages. */
  private track(child: ChildProcess, oomBefore: number): Loaded {
    const l: Loaded = {
      child,
      messages: [],
      waiters: [],
      exited: new Promise((resolve) => {
        child.once('close', (code, signal) => resolve({ code, signal }));
        child.once('error', () => resolve({ code: null, signal: null }));
      }),
      out: new Capture(),
      err: new Capture(),
      killedByUs: false,
      oomBefore,
      maxMessage: 64 * 1024,
    };
    (child.stdout as Readable).on('data', (b: Buffer) => l.out.add(b));
    (child.stderr as Readable).on('data', (b: Buffer) => l.err.add(b));
    const control = child.stdio[4] as Readable;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const deliver = (m: Message | undefined) => {
      const w = l.waiters.shift();
      if (w) w(m);
      else if (m) l.messages.push(m);
    };
    control.on('data', (b: Buffer) => {
      let chunk = b;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10)) {
        const bytes = Buffer.concat([...pending, chunk.subarray(0, nl)]);
        pending = [];
        pendingBytes = 0;
        chunk = chunk.subarray(nl + 1);
        if (bytes.length > l.maxMessage) {
          deliver({ kind: 'too_large', bytes: bytes.length });
          continue;
        }
        const line = bytes.toString('utf8');
        try {
          deliver(JSON.parse(line) as Message);
        } catch {
          // A bootstrap writes JSON lines only; anything else is ignored.
        }
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes > l.maxMessage) {
        deliver({ kind: 'too_large', bytes: pendingBytes });
        pending = [];
        this.kill(l);
      }
    });
    void l.exited.then(() => {
      while (l.waiters.length) l.waiters.shift()?.(undefined);
    });
    return l;
  }

  /** The next message, or undefined once the process has ended without one. */
  private next(l: Loaded): Promise<Message | undefined> {
    const m = l.messages.shift();
    if (m) return Promise.resolve(m);
    if (l.child.exitCode !== null || l.child.signalCode !== null) return Promise.resolve(undefined);
    return new Promise((resolve) => l.waiters.push(resolve));
  }

  /** SIGKILLs the handler's whole process group (it was started detached: its own group). */
  private kill(l: Loaded): void {
    if (l.child.exitCode !== null || l.child.signalCode !== null || l.child.pid === undefined) return;
    l.killedByUs = true;
    try {
      process.kill(-l.child.pid, 'SIGKILL');
    } catch {
      l.child.kill('SIGKILL');
    }
  }

  private discard(): void {
    if (this.loaded) this.kill(this.loaded);
    this.loaded = undefined;
  }

  private async oomKills(): Promise<number> {
    return (await this.o.oomKills?.().catch(() => 0)) ?? 0;
  }

  /** Ends a loaded handler (the guest agent stops). */
  close(): void {
    this.discard();
  }
}

/** `oom_kill` of /proc/vmstat (Linux ≥ 4.13). */
export async function procOomKills(): Promise<number> {
  const m = /^oom_kill (\d+)$/m.exec(await readFile('/proc/vmstat', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** MemTotal of /proc/meminfo in bytes. */
export async function procMemTotal(): Promise<number> {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(await readFile('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 512 * 1024 * 1024;
}
