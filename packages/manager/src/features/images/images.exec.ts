import { spawn } from 'node:child_process';

/** Runs a host command from an argv array (never a shell string); rejects with its stderr on a non-zero exit. */
export interface CommandRunner {
  run(cmd: string, args: readonly string[]): Promise<void>;
}

export const systemRunner: CommandRunner = {
  run(cmd, args) {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], shell: false });
      const err: Buffer[] = [];
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`${cmd} exited ${code}: ${Buffer.concat(err).toString('utf8').trim()}`));
      });
    });
  },
};
