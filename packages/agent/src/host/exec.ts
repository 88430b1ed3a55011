import { spawn } from 'node:child_process';
import { launchProcess } from './launch.mjs';
import { SpawnerRunner } from './spawner.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** The one way the agent runs host commands: argv arrays, never a shell string. */
export interface CommandRunner {
  run(cmd: string, args: readonly string[], opts?: RunOptions): Promise<CommandResult>;
}

/** Where a launched process's stdin/stdout/stderr go: nowhere, or a file opened with these flags. */
export type LaunchStdio = 'ignore' | { path: string; flags: 'a' | 'r+' };

export interface LaunchOptions {
  stdio: [LaunchStdio, LaunchStdio, LaunchStdio];
  /** Its own session, so the agent's exit or restart does not take it along (a VMM). */
  detached: boolean;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user and group, with no supplementary groups (a VMM's own). */
  uid?: number;
  gid?: number;
  /** Cgroups it starts in (joined by the launcher for the fork, so nothing runs outside them). */
  cgroups?: CgroupJoin[];
  /** Unix sockets bound by the launcher and handed over listening as fds 3, 4, …: the process needs no write access to their directory. */
  listen?: string[];
}

/** A cgroup to start a process in: its `cgroup.procs`, and that of the launcher's own cgroup in the same hierarchy. */
export interface CgroupJoin {
  procs: string;
  home: string;
}

export interface Launched {
  pid: number;
  /** Settles with how it exited ("exited with code 1", "killed by SIGKILL"), if that is ever learned. */
  exited: Promise<string>;
}

/** Starts long-lived processes (VMMs): argv arrays, never a shell string. */
export interface ProcessLauncher {
  launch(cmd: string, args: readonly string[], opts: LaunchOptions): Promise<Launched>;
}

export class CommandFailed extends Error {
  constructor(
    readonly cmd: string,
    readonly args: readonly string[],
    readonly result: CommandResult,
  ) {
    super(`${cmd} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandFailed';
  }
}

/** Spawns from this process: what the command helper does, and the fallback when the helper cannot start. */
export const directRunner: CommandRunner = {
  run(cmd, args, opts = {}) {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => undefined);
      child.on('error', (e) => {
        if (timer) clearTimeout(timer);
        reject(e);
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        resolve({
          code: code ?? (signal ? 128 : 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
        });
      });
      if (opts.input !== undefined) child.stdin.end(opts.input);
      else child.stdin.end();
    });
  },
};

/** Launches from this process: what the command helper does, and the fallback when the helper cannot start. */
export const directLauncher: ProcessLauncher = {
  async launch(cmd, args, opts) {
    const child = await launchProcess({ ...opts, cmd, args });
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`)),
    );
    child.unref();
    return { pid: child.pid ?? -1, exited };
  },
};

/**
 * The agent's runner: commands run through a small helper process (spawner.ts), because fork() from the agent
 * copies its page tables and blocks its event loop — tens of milliseconds per command once the agent is big.
 */
const helper = new SpawnerRunner(directRunner, directLauncher);
export const systemRunner: CommandRunner = helper;
/** VMMs start through the same helper, for the same reason. */
export const systemLauncher: ProcessLauncher = helper;

/** Runs a command and throws CommandFailed on a non-zero exit. */
export async function runChecked(
  runner: CommandRunner,
  cmd: string,
  args: readonly string[],
  opts?: RunOptions,
): Promise<string> {
  const result = await runner.run(cmd, args, opts);
  if (result.code !== 0) throw new CommandFailed(cmd, args, result);
  return result.stdout;
}
