import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CommandResult, CommandRunner, RunOptions } from './exec.ts';

const CHILD = fileURLToPath(new URL('./spawner-child.mjs', import.meta.url));

interface Pending {
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
}

interface Answer {
  id: number;
  result?: CommandResult;
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string };
}

/**
 * Runs commands in one long-lived helper process (spawner-child.mjs) instead of forking the caller for each.
 * Argv arrays only, as everywhere. The helper is started on first use, holds the event loop open only while
 * commands are in flight, and is started again if it dies (the commands it was running fail; none is retried,
 * since a command may have had its effect). If the helper cannot start at all, commands run directly.
 */
export class SpawnerRunner implements CommandRunner {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private broken = false;

  constructor(private readonly fallback: CommandRunner) {}

  run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const child = this.broken ? undefined : this.helper();
    if (!child) return this.fallback.run(cmd, args, opts);
    const id = this.nextId++;
    return new Promise<CommandResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.hold(child);
      child.send(
        {
          id,
          cmd,
          args: [...args],
          input: opts.input,
          timeoutMs: opts.timeoutMs,
          cwd: opts.cwd,
          env: { ...(opts.env ?? process.env) },
        },
        (err) => {
          if (err) this.settle(id, (p) => p.reject(err));
        },
      );
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
    child.on('message', (m: Answer) => this.answer(m));
    child.on('error', () => this.lost(child));
    child.on('exit', () => this.lost(child));
    this.child = child;
    this.release(child);
    return child;
  }

  private answer(m: Answer): void {
    this.settle(m.id, (p) => {
      if (m.result) return p.resolve(m.result);
      const e = Object.assign(new Error(m.error?.message ?? 'command failed in the helper'), m.error);
      p.reject(e);
    });
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
