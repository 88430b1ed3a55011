import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CommandResult, CommandRunner, Launched, LaunchOptions, ProcessLauncher, RunOptions } from './exec.ts';

const CHILD = fileURLToPath(new URL('./spawner-child.mjs', import.meta.url));

interface Pending {
  resolve: (r: Answer) => void;
  reject: (e: Error) => void;
}

interface Answer {
  id: number;
  result?: CommandResult;
  pid?: number;
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string };
}

interface Exited {
  exited: number;
  how: string;
}

/**
 * Runs commands and launches VMMs in one long-lived helper process (spawner-child.mjs) instead of forking the
 * caller for each. Argv arrays only, as everywhere. The helper is started on first use, holds the event loop open only while
 * commands are in flight, and is started again if it dies (the commands it was running fail; none is retried,
 * since a command may have had its effect). If the helper cannot start at all, commands run directly.
 */
export class SpawnerRunner implements CommandRunner, ProcessLauncher {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  /** Launched processes whose exit the helper will report. */
  private readonly watching = new Map<number, (how: string) => void>();
  private nextId = 1;
  private broken = false;

  constructor(
    private readonly fallback: CommandRunner,
    private readonly fallbackLauncher: ProcessLauncher,
  ) {}

  async run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const child = this.broken ? undefined : this.helper();
    if (!child) return this.fallback.run(cmd, args, opts);
    const { input, timeoutMs, cwd } = opts;
    const answer = await this.ask(child, {
      cmd,
      args: [...args],
      input,
      timeoutMs,
      cwd,
      env: { ...(opts.env ?? process.env) },
    });
    if (!answer.result) throw new Error('the command helper answered without a result');
    return answer.result;
  }

  async launch(cmd: string, args: readonly string[], opts: LaunchOptions): Promise<Launched> {
    const child = this.broken ? undefined : this.helper();
    if (!child) return this.fallbackLauncher.launch(cmd, args, opts);
    const id = this.nextId++;
    const exited = new Promise<string>((resolve) => this.watching.set(id, resolve));
    const { stdio, detached, cwd, uid, gid, cgroups, listen } = opts;
    try {
      const answer = await this.ask(
        child,
        {
          op: 'launch',
          cmd,
          args: [...args],
          stdio,
          detached,
          cwd,
          uid,
          gid,
          cgroups,
          listen,
          env: { ...(opts.env ?? process.env) },
        },
        id,
      );
      if (answer.pid === undefined) throw new Error('the command helper answered without a pid');
      return { pid: answer.pid, exited };
    } catch (e) {
      this.watching.delete(id);
      throw e;
    }
  }

  private ask(child: ChildProcess, message: object, id = this.nextId++): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.hold(child);
      child.send({ id, ...message }, (err) => {
        if (err) this.settle(id, (p) => p.reject(err));
      });
    });
  }

  /** Stops the helper (tests; the agent's shutdown does not need it: an idle helper never holds the process). */
  close(): void {
    this.child?.kill();
    this.child = undefined;
  }

  private helper(): ChildProcess | undefined {
    if (this.child?.connected) return this.child;
    let child: ChildProcess;
    try {
      // Plain node with no loader flags: the helper is JavaScript and should stay small.
      child = fork(CHILD, [], {
        execArgv: [],
        serialization: 'advanced',
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
    } catch {
      this.broken = true;
      return undefined;
    }
    child.on('message', (m: Answer | Exited) => ('exited' in m ? this.exited(m) : this.answer(m)));
    child.on('error', () => this.lost(child));
    child.on('exit', () => this.lost(child));
    this.child = child;
    this.release(child);
    return child;
  }

  private answer(m: Answer): void {
    this.settle(m.id, (p) => {
      if (!m.error) return p.resolve(m);
      p.reject(Object.assign(new Error(m.error.message), m.error));
    });
  }

  private exited(m: Exited): void {
    this.watching.get(m.exited)?.(m.how);
    this.watching.delete(m.exited);
  }

  private settle(id: number, how: (p: Pending) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    how(p);
    if (this.pending.size === 0 && this.child) this.release(this.child);
  }

  private lost(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = undefined;
    const failed = [...this.pending.values()];
    this.pending.clear();
    // Their exits would have been reported by the dead helper; nobody can say now (adoption checks by pid).
    this.watching.clear();
    for (const p of failed) p.reject(new Error('the command helper exited while the command ran'));
  }

  private hold(child: ChildProcess): void {
    child.ref();
    child.channel?.ref();
  }

  private release(child: ChildProcess): void {
    child.unref();
    child.channel?.unref();
  }
}
